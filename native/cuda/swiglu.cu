// The Llama MLP gate, out = silu(gate) * up, and its backward, as native/cpu/swiglu.cc: fp32 math from
// the stored inputs, one rounding per output. expf (not __expf): the fast intrinsic's error would show
// against the CPU at f32. sigmoid(x) = num / (1 + e) with e = exp(-|x|), num = 1 for x ≥ 0 and e
// below, as on the CPU: exp(-x) overflows below x = -88.7, where x·sigmoid(x) is still a normal float.
#include "cuda/common.cuh"

namespace pt::cuda {

__device__ inline void sigmoid_parts(float x, float& num, float& den) {
  const float e = expf(-fabsf(x));
  num = x < 0.f ? e : 1.f;
  den = 1.f + e;
}

template <typename T>
__global__ void swiglu_fwd(int64_t n, const T* g, const T* u, T* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = ld(g, i);
    float num, den;
    sigmoid_parts(x, num, den);
    st(out, i, x * num / den * ld(u, i));
  }
}

template <typename T>
__global__ void swiglu_bwd(int64_t n, const T* g, const T* u, const T* dout, T* dg, T* du) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = ld(g, i), up = ld(u, i), d = ld(dout, i);
    float num, den;
    sigmoid_parts(x, num, den);
    const float sig = num / den;
    st(du, i, d * (x * sig));
    st(dg, i, d * up * sig * (1.f + x * (1.f - sig)));
  }
}

void swiglu_forward(Context& ctx, DType dt, int64_t n, const void* gate, const void* up, void* out) {
  enter(ctx, "swiglu");
  if (n == 0) return;
  PT_DISPATCH_FLOAT(dt, T, swiglu_fwd<T><<<grid_for(n), 256, 0, ctx.stream>>>(n, (const T*)gate, (const T*)up, (T*)out));
  PT_LAUNCH_CHECK(ctx, "swiglu");
}

void swiglu_backward(Context& ctx, DType dt, int64_t n, const void* gate, const void* up, const void* dout,
                     void* dgate, void* dup) {
  enter(ctx, "swiglu_backward");
  if (n == 0) return;
  PT_DISPATCH_FLOAT(dt, T, swiglu_bwd<T><<<grid_for(n), 256, 0, ctx.stream>>>(
      n, (const T*)gate, (const T*)up, (const T*)dout, (T*)dgate, (T*)dup));
  PT_LAUNCH_CHECK(ctx, "swiglu_backward");
}

}  // namespace pt::cuda
