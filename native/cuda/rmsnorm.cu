// RMSNorm as native/cpu/rmsnorm.cc. Forward: one block per row, statistics in fp32, the normalised x
// rounded to the working dtype before the weight multiply (Hugging Face's rounding point). Backward:
// dx one block per row; dw deterministically, as the CPU: each block of kRows rows writes one fp32
// partial row, then a second kernel adds the partials in block order to the existing dw (weight
// gradients accumulate across micro-batches) and rounds once. No float atomics anywhere.
#include "cuda/common.cuh"

namespace pt::cuda {

static constexpr int kThreads = 256;
static constexpr int64_t kRows = 64;  // the CPU's block of rows for dw partials

template <typename T>
__global__ void rms_fwd(int64_t C, float eps, const T* x, const T* w, T* out, float* rstd) {
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x;
  const T* xr = x + n * C;
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float v = ld(xr, c);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float r = 1.f / sqrtf(ss / float(C) + eps);
  if (threadIdx.x == 0) rstd[n] = r;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    st(out + n * C, c, round_to(ld(xr, c) * r, xr) * ld(w, c));
}

// dx = r (g w - xhat * mean(g w xhat)), xhat = x r.
template <typename T>
__global__ void rms_bwd_dx(int64_t C, const T* x, const T* w, const float* rstd, const T* dout, T* dx) {
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x;
  const T* xr = x + n * C;
  const T* gr = dout + n * C;
  const float r = rstd[n];
  float dot = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dot += ld(gr, c) * ld(w, c) * ld(xr, c) * r;
  dot = block_sum(dot, scratch) / float(C);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float xhat = ld(xr, c) * r;
    st(dx + n * C, c, r * (ld(gr, c) * ld(w, c) - xhat * dot));
  }
}

// Block (blockIdx.x: up to 2^31-1 of them, where y stops at 65535) of kRows rows, columns over
// blockIdx.y: partial[b, c] = sum_n g[n, c] xhat[n, c].
template <typename T>
__global__ void rms_bwd_dw_partial(int64_t N, int64_t C, const T* x, const float* rstd, const T* dout, float* partial) {
  const int64_t c = blockIdx.y * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const int64_t b = blockIdx.x;
  const int64_t n1 = min(N, (b + 1) * kRows);
  float s = 0.f;
  for (int64_t n = b * kRows; n < n1; n++) s += ld(dout + n * C, c) * (ld(x + n * C, c) * rstd[n]);
  partial[b * C + c] = s;
}

template <typename T>
__global__ void rms_bwd_dw_total(int64_t nb, int64_t C, const float* partial, T* dw) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  float s = ld(dw, c);
  for (int64_t b = 0; b < nb; b++) s += partial[b * C + c];
  st(dw, c, s);
}

void rmsnorm_forward(Context& ctx, DType dt, int64_t N, int64_t C, float eps, const void* x, const void* w,
                     void* out, float* rstd) {
  enter(ctx, "rmsnorm");
  if (N == 0 || C == 0) return;
  PT_DISPATCH_FLOAT(dt, T, rms_fwd<T><<<unsigned(N), kThreads, 0, ctx.stream>>>(
      C, eps, (const T*)x, (const T*)w, (T*)out, rstd));
  PT_LAUNCH_CHECK(ctx, "rmsnorm");
}

void rmsnorm_backward(Context& ctx, DType dt, int64_t N, int64_t C, const void* x, const void* w,
                      const float* rstd, const void* dout, void* dx, void* dw) {
  enter(ctx, "rmsnorm_backward");
  if (N == 0 || C == 0) return;
  const int64_t nb = (N + kRows - 1) / kRows;
  float* partial = (float*)alloc(ctx, size_t(nb * C) * sizeof(float), "rmsnorm_backward dw partials");
  const dim3 pgrid(unsigned(nb), unsigned((C + kThreads - 1) / kThreads));
  PT_DISPATCH_FLOAT(dt, T, {
    rms_bwd_dx<T><<<unsigned(N), kThreads, 0, ctx.stream>>>(C, (const T*)x, (const T*)w, rstd, (const T*)dout, (T*)dx);
    rms_bwd_dw_partial<T><<<pgrid, kThreads, 0, ctx.stream>>>(N, C, (const T*)x, rstd, (const T*)dout, partial);
    rms_bwd_dw_total<T><<<unsigned((C + kThreads - 1) / kThreads), kThreads, 0, ctx.stream>>>(nb, C, partial, (T*)dw);
  });
  PT_LAUNCH_CHECK(ctx, "rmsnorm_backward");
  free(ctx, partial);
}

}  // namespace pt::cuda
