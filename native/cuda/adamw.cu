// AdamW over a flat arena, as native/cpu/adamw.cc (torch.optim.AdamW's arithmetic): fp32 master
// weights and moments, the working copy rewritten from the master (lr 1e-5 updates vanish when added
// to bf16 directly). Bias corrections are computed on the host in double, exactly as the CPU does, so
// both backends see the same float constants. One thread per element, grid-stride: memory-bound
// (28 bytes per bf16 parameter), so there is nothing to tile.
#include <cmath>

#include "cuda/common.cuh"

namespace pt::cuda {

// One element's update; the same arithmetic as the CPU, in the same order.
__device__ __forceinline__ float adamw_one(float g, float& m, float& v, float master, float lr, float beta1, float beta2,
                                           float eps, float decay, float bc1, float bc2) {
  m = beta1 * m + (1.f - beta1) * g;
  v = beta2 * v + (1.f - beta2) * g * g;
  return master * decay - lr * (m / bc1) / (sqrtf(v / bc2) + eps);
}

template <typename T>
__global__ void adamw_kernel(int64_t n, T* param, const T* grad, float* master, float* m, float* v,
                             float lr, float beta1, float beta2, float eps, float decay, float bc1,
                             float bc2, float grad_scale, const float* grad_scale_dev) {
  const float gs = grad_scale_dev ? grad_scale * *grad_scale_dev : grad_scale;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float mi = m[i], vi = v[i];
    const float w = adamw_one(ld(grad, i) * gs, mi, vi, master[i], lr, beta1, beta2, eps, decay, bc1, bc2);
    m[i] = mi;
    v[i] = vi;
    master[i] = w;
    st(param, i, w);
  }
}

// Four elements per thread with 16-byte loads of the fp32 streams (8-byte for bf16): each thread has
// four independent loads in flight per stream instead of one, which the scalar kernel lacked to reach
// the copy bandwidth. Taken when every pointer is aligned for it; the tail goes to the scalar kernel.
template <typename T>
struct Vec4;
template <>
struct Vec4<float> {
  using type = float4;
  __device__ static float get(const float4& x, int k) { return (&x.x)[k]; }
  __device__ static void set(float4& x, int k, float f) { (&x.x)[k] = f; }
};
template <>
struct Vec4<bf16_t> {
  struct alignas(8) type {
    __nv_bfloat162 a, b;
  };
  __device__ static float get(const type& x, int k) {
    return k < 2 ? (k ? __high2float(x.a) : __low2float(x.a)) : (k == 3 ? __high2float(x.b) : __low2float(x.b));
  }
  __device__ static void set(type& x, int k, float f) {
    __nv_bfloat16 h = __float2bfloat16_rn(f);
    if (k == 0) x.a.x = h; else if (k == 1) x.a.y = h; else if (k == 2) x.b.x = h; else x.b.y = h;
  }
};

template <typename T>
__global__ void adamw_kernel_vec4(int64_t n4, T* param, const T* grad, float* master, float* m, float* v, float lr,
                                  float beta1, float beta2, float eps, float decay, float bc1, float bc2,
                                  float grad_scale, const float* grad_scale_dev) {
  using V = Vec4<T>;
  using TV = typename V::type;
  const float gs = grad_scale_dev ? grad_scale * *grad_scale_dev : grad_scale;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const TV g4 = reinterpret_cast<const TV*>(grad)[i];
    float4 m4 = reinterpret_cast<float4*>(m)[i], v4 = reinterpret_cast<float4*>(v)[i];
    float4 w4 = reinterpret_cast<float4*>(master)[i];
    TV p4;
#pragma unroll
    for (int k = 0; k < 4; k++) {
      float mk = (&m4.x)[k], vk = (&v4.x)[k];
      const float w = adamw_one(V::get(g4, k) * gs, mk, vk, (&w4.x)[k], lr, beta1, beta2, eps, decay, bc1, bc2);
      (&m4.x)[k] = mk;
      (&v4.x)[k] = vk;
      (&w4.x)[k] = w;
      V::set(p4, k, w);
    }
    reinterpret_cast<float4*>(m)[i] = m4;
    reinterpret_cast<float4*>(v)[i] = v4;
    reinterpret_cast<float4*>(master)[i] = w4;
    if (static_cast<void*>(param) != static_cast<void*>(master)) reinterpret_cast<TV*>(param)[i] = p4;
  }
}

inline bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

void adamw_step(Context& ctx, DType dt, int64_t n, void* param, const void* grad, float* master, float* m,
                float* v, const AdamWArgs& p) {
  enter(ctx, "adamw");
  if (p.step < 1) throw OpError("adamw: step must be >= 1, got " + std::to_string(p.step));
  if (n == 0) return;
  const float bc1 = 1.f - float(std::pow(double(p.beta1), double(p.step)));
  const float bc2 = 1.f - float(std::pow(double(p.beta2), double(p.step)));
  const float decay = 1.f - p.lr * p.weight_decay;
  PT_DISPATCH_FLOAT(dt, T, {
    const size_t ta = 4 * sizeof(T);
    const bool vec = aligned(param, ta) && aligned(grad, ta) && aligned(master, 16) && aligned(m, 16) && aligned(v, 16);
    const int64_t head = vec ? n / 4 * 4 : 0;
    if (head > 0)
      adamw_kernel_vec4<T><<<grid_for(head / 4), 256, 0, ctx.stream>>>(head / 4, (T*)param, (const T*)grad, master, m, v,
          p.lr, p.beta1, p.beta2, p.eps, decay, bc1, bc2, p.grad_scale, p.grad_scale_dev);
    if (n > head)
      adamw_kernel<T><<<grid_for(n - head), 256, 0, ctx.stream>>>(n - head, (T*)param + head, (const T*)grad + head,
          master + head, m + head, v + head, p.lr, p.beta1, p.beta2, p.eps, decay, bc1, bc2, p.grad_scale, p.grad_scale_dev);
  });
  PT_LAUNCH_CHECK(ctx, "adamw");
}

}  // namespace pt::cuda
