// The caching allocator: CUDA's stream-ordered pool (cudaMallocAsync on the context's stream, release
// threshold at maximum, so freed blocks stay cached in the pool). Stream order makes free safe while
// kernels that use the block are still queued. If fragmentation shows in the 7B run, a size-class
// block cache (PyTorch's design) can replace this behind the same functions.
#include <cstdio>

#include "cuda/context.h"

namespace pt::cuda {

static size_t pool_reserved(Context& ctx) {
  uint64_t v = 0;
  if (cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrReservedMemCurrent, &v) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return size_t(v);
}

static void device_memory(Context& ctx, size_t* free_b, size_t* total_b) {
  *free_b = *total_b = 0;
  if (cudaMemGetInfo(free_b, total_b) != cudaSuccess) cudaGetLastError();
}

void* alloc(Context& ctx, size_t bytes, const char* what) {
  enter(ctx, "alloc");
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  cudaError_t err = cudaMallocAsync(&p, bytes, ctx.stream);
  if (err == cudaErrorMemoryAllocation) {
    // The pool may hold freed blocks of the wrong sizes: wait until queued frees have happened, give
    // everything cached back to the driver, and try once more.
    cudaGetLastError();
    PT_CUDA_CHECK_CTX(ctx, cudaStreamSynchronize(ctx.stream));
    PT_CUDA_CHECK_CTX(ctx, cudaMemPoolTrimTo(ctx.pool, 0));
    err = cudaMallocAsync(&p, bytes, ctx.stream);
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_b, total_b;
    device_memory(ctx, &free_b, &total_b);
    size_t live;
    {
      std::lock_guard<std::mutex> lock(ctx.mu);
      live = ctx.live;
    }
    const size_t reserved = pool_reserved(ctx);
    const size_t cached = reserved > live ? reserved - live : 0;
    std::string msg = "cuda:" + std::to_string(ctx.device) + " out of memory allocating " +
                      format_bytes(bytes) + " for " + what + ": " + format_bytes(live) + " in use, " +
                      format_bytes(cached) + " cached, " + format_bytes(free_b) + " free, " +
                      format_bytes(total_b) + " total";
    throw OutOfMemory(ctx.device, bytes, live, reserved, total_b, msg);
  }
  PT_CUDA_CHECK_CTX(ctx, err);
  std::lock_guard<std::mutex> lock(ctx.mu);
  ctx.sizes[p] = bytes;
  ctx.live += bytes;
  if (ctx.live > ctx.peak) ctx.peak = ctx.live;
  return p;
}

void free(Context& ctx, void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(ctx.mu);
    auto it = ctx.sizes.find(p);
    if (it == ctx.sizes.end()) throw OpError("cuda free: pointer was not allocated by this device's allocator");
    ctx.live -= it->second;
    ctx.sizes.erase(it);
  }
  // A lost context cannot free; its memory goes with the process.
  if (ctx.lost.load()) return;
  PT_CUDA_CHECK_CTX(ctx, cudaFreeAsync(p, ctx.stream));
}

void trim(Context& ctx) {
  enter(ctx, "trim");
  PT_CUDA_CHECK_CTX(ctx, cudaStreamSynchronize(ctx.stream));
  PT_CUDA_CHECK_CTX(ctx, cudaMemPoolTrimTo(ctx.pool, 0));
}

MemoryStats memory_stats(Context& ctx) {
  MemoryStats s{};
  {
    std::lock_guard<std::mutex> lock(ctx.mu);
    s.live = ctx.live;
    s.peak = ctx.peak;
    s.allocations = int64_t(ctx.sizes.size());
  }
  s.reserved = pool_reserved(ctx);
  device_memory(ctx, &s.free, &s.total);
  return s;
}

void reset_peak(Context& ctx) {
  std::lock_guard<std::mutex> lock(ctx.mu);
  ctx.peak = ctx.live;
}

void copy_to_device(Context& ctx, void* dst, const void* src, size_t bytes) {
  enter(ctx, "copy_to_device");
  if (bytes == 0) return;
  PT_CUDA_CHECK_CTX(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx.stream));
  // Pageable source: the copy may read it after return, so wait (a pinned staging buffer is the seam's).
  PT_CUDA_CHECK_CTX(ctx, cudaStreamSynchronize(ctx.stream));
}

void copy_to_host(Context& ctx, void* dst, const void* src, size_t bytes) {
  enter(ctx, "copy_to_host");
  if (bytes == 0) return;
  PT_CUDA_CHECK_CTX(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx.stream));
  PT_CUDA_CHECK_CTX(ctx, cudaStreamSynchronize(ctx.stream));
}

void copy_on_device(Context& ctx, void* dst, const void* src, size_t bytes) {
  enter(ctx, "copy_on_device");
  if (bytes == 0) return;
  PT_CUDA_CHECK_CTX(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream));
}

void memset_async(Context& ctx, void* dst, int byte, size_t bytes) {
  enter(ctx, "memset");
  if (bytes == 0) return;
  PT_CUDA_CHECK_CTX(ctx, cudaMemsetAsync(dst, byte, bytes, ctx.stream));
}

}  // namespace pt::cuda
