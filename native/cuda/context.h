// A device's context, for code that includes the CUDA runtime (the .cu files, allocator.cc, gemm.cc).
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cuda/api.h"

namespace pt::cuda {

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;  // the one compute stream: every op of this device is ordered on it
  cudaMemPool_t pool = nullptr;   // the device's default pool, release threshold at maximum
  uint32_t* status = nullptr;     // device word of StatusBits
  bool sync_each_op = false;      // POLYTUNE_CUDA_SYNC=1
  // cuBLASLt handle and workspace (gemm.cc), created on the first gemm.
  void* lt_handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  // After a sticky fault the context is unusable; every later call says so instead of faulting again.
  std::atomic<bool> lost{false};
  std::string lost_reason;
  // allocator.cc
  std::mutex mu;
  std::unordered_map<void*, size_t> sizes;
  size_t live = 0, peak = 0;
};

// Throws CudaError when err != cudaSuccess; a sticky error marks ctx (when given) lost.
void check_api(cudaError_t err, const char* api, const char* file, int line, Context* ctx = nullptr);
// After every launch: the launch error, and under POLYTUNE_CUDA_SYNC=1 a sync that names `op` as the
// faulting one (asynchronous faults otherwise surface at the next sync point, named there).
void after_launch(Context& ctx, const char* op, const char* file, int line);
// Makes ctx's device current and refuses a lost context.
void enter(Context& ctx, const char* op);

}  // namespace pt::cuda

#define PT_CUDA_CHECK(expr) ::pt::cuda::check_api((expr), #expr, __FILE__, __LINE__)
#define PT_CUDA_CHECK_CTX(ctx, expr) ::pt::cuda::check_api((expr), #expr, __FILE__, __LINE__, &(ctx))
#define PT_LAUNCH_CHECK(ctx, op) ::pt::cuda::after_launch((ctx), (op), __FILE__, __LINE__)
