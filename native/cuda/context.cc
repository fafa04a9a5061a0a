// Device contexts and error reporting. One context per device, created on first use and kept for the
// life of the process (destroying streams and pools at exit races the driver's own teardown).
#include "cuda/context.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace pt::cuda {

OutOfMemory::OutOfMemory(int device, size_t requested, size_t in_use, size_t reserved, size_t total,
                         const std::string& what)
    : std::runtime_error(what), device(device), requested(requested), in_use(in_use),
      reserved(reserved), total(total) {}

CudaError::CudaError(const std::string& api, const std::string& code, const std::string& where,
                     bool sticky, const std::string& what)
    : std::runtime_error(what), api(api), code(code), where(where), sticky(sticky) {}

std::string format_bytes(size_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

// Errors after which the CUDA context is corrupted and every later call fails (CUDA Runtime API,
// "sticky" errors): the process must restart; the last checkpoint on disk stays valid.
static bool is_sticky(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorLaunchTimeout:
      return true;
    default:
      return false;
  }
}

[[noreturn]] static void fail(cudaError_t err, const std::string& api, const char* file, int line,
                              Context* ctx, const std::string& note) {
  const bool sticky = is_sticky(err);
  std::string where = std::string(file) + ":" + std::to_string(line);
  std::string dev = ctx ? "cuda:" + std::to_string(ctx->device) + ": " : "";
  std::string msg = dev + api + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                    ") at " + where + note;
  if (sticky) {
    msg += "; the device is unusable after this fault, restart the process";
    if (ctx && !ctx->lost.exchange(true)) ctx->lost_reason = msg;
  } else {
    cudaGetLastError();  // a non-sticky error must not be reported again by the next check
  }
  throw CudaError(api, cudaGetErrorName(err), where, sticky, msg);
}

void check_api(cudaError_t err, const char* api, const char* file, int line, Context* ctx) {
  if (err != cudaSuccess) fail(err, api, file, line, ctx, "");
}

void after_launch(Context& ctx, const char* op, const char* file, int line) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) fail(err, std::string(op) + " (launch)", file, line, &ctx, "");
  if (ctx.sync_each_op) {
    err = cudaStreamSynchronize(ctx.stream);
    if (err != cudaSuccess)
      fail(err, op, file, line, &ctx, " (POLYTUNE_CUDA_SYNC=1: this op faulted)");
  }
}

// The device this thread last made current; context() changes it too, so it is kept here.
static thread_local int t_current_device = -1;

void enter(Context& ctx, const char* op) {
  if (ctx.lost.load()) {
    throw CudaError(op, "lost", "", true,
                    std::string(op) + ": cuda:" + std::to_string(ctx.device) +
                        " is unusable after an earlier fault (" + ctx.lost_reason + "); restart the process");
  }
  // One device per process is the expected case (DESIGN: one process per GPU), so this is nearly
  // always a cached no-op; it keeps a second device's launches off the first.
  if (t_current_device != ctx.device) {
    check_api(cudaSetDevice(ctx.device), "cudaSetDevice", __FILE__, __LINE__, &ctx);
    t_current_device = ctx.device;
  }
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

static std::mutex contexts_mu;
static std::vector<Context*> contexts;  // leaked on purpose, see the top of this file

Context& context(int device) {
  std::lock_guard<std::mutex> lock(contexts_mu);
  const int n = device_count();
  if (device < 0 || device >= n) {
    throw CudaError("context", "cudaErrorInvalidDevice", "", false,
                    "cuda:" + std::to_string(device) + " does not exist (" + std::to_string(n) +
                        " CUDA device" + (n == 1 ? "" : "s") + " visible)");
  }
  if (contexts.size() < size_t(n)) contexts.resize(size_t(n), nullptr);
  if (contexts[size_t(device)]) return *contexts[size_t(device)];
  auto ctx = std::make_unique<Context>();
  ctx->device = device;
  const char* sync = std::getenv("POLYTUNE_CUDA_SYNC");
  ctx->sync_each_op = sync && sync[0] == '1';
  Context& c = *ctx;
  PT_CUDA_CHECK_CTX(c, cudaSetDevice(device));
  t_current_device = device;
  // Non-blocking: the legacy default stream must not serialise against ours.
  PT_CUDA_CHECK_CTX(c, cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  PT_CUDA_CHECK_CTX(c, cudaDeviceGetDefaultMemPool(&c.pool, device));
  // Keep freed memory in the pool instead of returning it at every sync: that is the caching.
  uint64_t threshold = UINT64_MAX;
  PT_CUDA_CHECK_CTX(c, cudaMemPoolSetAttribute(c.pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  PT_CUDA_CHECK_CTX(c, cudaMalloc(&c.status, sizeof(uint32_t)));
  PT_CUDA_CHECK_CTX(c, cudaMemset(c.status, 0, sizeof(uint32_t)));
  contexts[size_t(device)] = ctx.release();
  return c;
}

int device_of(const Context& ctx) { return ctx.device; }

void synchronize(Context& ctx, const char* what) {
  enter(ctx, what);
  check_api(cudaStreamSynchronize(ctx.stream), what, __FILE__, __LINE__, &ctx);
}

uint32_t take_status(Context& ctx) {
  enter(ctx, "status");
  uint32_t bits = 0;
  PT_CUDA_CHECK_CTX(ctx, cudaMemcpyAsync(&bits, ctx.status, sizeof bits, cudaMemcpyDeviceToHost, ctx.stream));
  PT_CUDA_CHECK_CTX(ctx, cudaMemsetAsync(ctx.status, 0, sizeof bits, ctx.stream));
  PT_CUDA_CHECK_CTX(ctx, cudaStreamSynchronize(ctx.stream));
  return bits;
}

#ifndef POLYTUNE_HAS_CUBLASLT
// A compile-only build has no cuBLASLt: gemm says so, as every CUDA call of a CPU-only addon will.
bool has_gemm() { return false; }
void gemm(Context&, DType, bool, bool, int64_t, int64_t, int64_t, const void*, int64_t, const void*,
          int64_t, void*, int64_t, bool) {
  throw OpError("gemm: this build has no cuBLASLt (the CUDA kernels were compiled without it)");
}
#endif

}  // namespace pt::cuda
