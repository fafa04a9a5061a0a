// Rotary embeddings in the Hugging Face layout (dimension i pairs with i + D/2), from the caller's f32
// cos/sin tables [P, D/2], so the GPU uses the very angles the CPU does (computing them on the device
// with sincosf would differ in the last bits). inverse rotates by -theta: the backward pass.
// A position outside the table (the host validates batches, so only a bug gets here) is clamped and
// reported through the status word instead of a device assert.
#include "cuda/common.cuh"

namespace pt::cuda {

// One thread per (row, head, pair i < D/2); out may alias x: each thread reads its pair before writing it.
template <typename T>
__global__ void rope_kernel(int64_t N, int64_t H, int64_t half, int64_t P, const int32_t* pos,
                            const float* cosT, const float* sinT, const T* x, T* out, float sgn,
                            uint32_t* status) {
  const int64_t total = N * H * half;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t % half, nh = t / half, n = nh / H;
    int64_t p = pos[n];
    if (p < 0 || p >= P) {
      atomicOr(status, uint32_t(kBadPosition));
      p = p < 0 ? 0 : P - 1;
    }
    const float c = cosT[p * half + i], s = sgn * sinT[p * half + i];
    const T* xr = x + nh * 2 * half;
    T* yr = out + nh * 2 * half;
    const float x1 = ld(xr, i), x2 = ld(xr, i + half);
    st(yr, i, x1 * c - x2 * s);
    st(yr, i + half, x2 * c + x1 * s);
  }
}

void rope_apply(Context& ctx, DType dt, int64_t N, int64_t H, int64_t D, int64_t P, const int32_t* pos,
                const float* cos, const float* sin, const void* x, void* out, bool inverse) {
  enter(ctx, "rope");
  const int64_t half = D / 2;
  if (N * H * half == 0) return;
  PT_DISPATCH_FLOAT(dt, T, rope_kernel<T><<<grid_for(N * H * half), 256, 0, ctx.stream>>>(
      N, H, half, P, pos, cos, sin, (const T*)x, (T*)out, inverse ? -1.f : 1.f, ctx.status));
  PT_LAUNCH_CHECK(ctx, "rope");
}

}  // namespace pt::cuda
