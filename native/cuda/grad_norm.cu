// The global gradient norm without a host round trip per tensor: sum of squares over a flat arena into
// a device scalar, and the clipping factor computed from it on the device, read by AdamW directly.
// Pass 1 gives each fixed 65536-element block (the CPU's kBlock) one fp64 partial, reduced in a fixed
// thread order; pass 2 sums the partials in block order in one thread block. Neither pass depends on
// the GPU's size or timing, so the norm (and the clipped update) is the same on every run.
#include "cuda/common.cuh"

namespace pt::cuda {

static constexpr int64_t kBlock = 1 << 16;
static constexpr int kThreads = 512;

template <typename T>
__global__ void sumsq_partials(int64_t n, const T* x, double* part) {
  __shared__ double scratch[32];
  const int64_t b0 = blockIdx.x * kBlock, b1 = min(n, b0 + kBlock);
  double s = 0;
  for (int64_t i = b0 + threadIdx.x; i < b1; i += blockDim.x) {
    const double v = ld(x, i);
    s += v * v;
  }
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// One block: thread t sums partials t, t + 512, ... in order, then the fixed tree.
__global__ void sumsq_total(int64_t nb, const double* part, double* out, bool accumulate) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t i = threadIdx.x; i < nb; i += blockDim.x) s += part[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *out = accumulate ? *out + s : s;
}

void sum_squares(Context& ctx, DType dt, int64_t n, const void* x, double* out, bool accumulate) {
  enter(ctx, "sum_squares");
  const int64_t nb = (n + kBlock - 1) / kBlock;
  if (nb == 0) {
    if (!accumulate) PT_CUDA_CHECK_CTX(ctx, cudaMemsetAsync(out, 0, sizeof(double), ctx.stream));
    return;
  }
  double* part = (double*)alloc(ctx, size_t(nb) * sizeof(double), "sum_squares partials");
  // Grid x allows 2^31 - 1 blocks: 1.4e14 elements, beyond any arena.
  PT_DISPATCH_FLOAT(dt, T, sumsq_partials<T><<<unsigned(nb), kThreads, 0, ctx.stream>>>(n, (const T*)x, part));
  PT_LAUNCH_CHECK(ctx, "sum_squares");
  sumsq_total<<<1, kThreads, 0, ctx.stream>>>(nb, part, out, accumulate);
  PT_LAUNCH_CHECK(ctx, "sum_squares");
  free(ctx, part);
}

__global__ void split_pair(const double* s, float* pair) {
  const float hi = float(*s);
  pair[0] = hi;
  pair[1] = float(*s - double(hi));
}

void sum_squares_pair(Context& ctx, DType dt, int64_t n, const void* x, float* pair) {
  double* total = (double*)alloc(ctx, sizeof(double), "sum_squares total");
  sum_squares(ctx, dt, n, x, total, false);
  enter(ctx, "sum_squares_pair");
  split_pair<<<1, 1, 0, ctx.stream>>>(total, pair);
  PT_LAUNCH_CHECK(ctx, "sum_squares_pair");
  free(ctx, total);
}

__global__ void clip_kernel(const double* sumsq, float max_norm, float* scale) {
  const double norm = sqrt(*sumsq);
  // src/train/adamw.ts: max > 0 && norm > max ? max / (norm + 1e-6) : 1 (there in double).
  *scale = max_norm > 0 && norm > double(max_norm) ? float(double(max_norm) / (norm + 1e-6)) : 1.f;
}

void clip_scale(Context& ctx, const double* sumsq, float max_norm, float* scale) {
  enter(ctx, "clip_scale");
  clip_kernel<<<1, 1, 0, ctx.stream>>>(sumsq, max_norm, scale);
  PT_LAUNCH_CHECK(ctx, "clip_scale");
}

}  // namespace pt::cuda
