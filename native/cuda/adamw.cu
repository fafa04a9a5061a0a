// AdamW over a flat arena, as native/cpu/adamw.cc (torch.optim.AdamW's arithmetic): fp32 master
// weights and moments, the working copy rewritten from the master (lr 1e-5 updates vanish when added
// to bf16 directly). Bias corrections are computed on the host in double, exactly as the CPU does, so
// both backends see the same float constants. One thread per element, grid-stride: memory-bound
// (28 bytes per bf16 parameter), so there is nothing to tile.
#include <cmath>

#include "cuda/common.cuh"

namespace pt::cuda {

template <typename T>
__global__ void adamw_kernel(int64_t n, T* param, const T* grad, float* master, float* m, float* v,
                             float lr, float beta1, float beta2, float eps, float decay, float bc1,
                             float bc2, float grad_scale, const float* grad_scale_dev) {
  const float gs = grad_scale_dev ? grad_scale * *grad_scale_dev : grad_scale;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = ld(grad, i) * gs;
    const float mi = beta1 * m[i] + (1.f - beta1) * g;
    const float vi = beta2 * v[i] + (1.f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float w = master[i] * decay - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    master[i] = w;
    st(param, i, w);
  }
}

void adamw_step(Context& ctx, DType dt, int64_t n, void* param, const void* grad, float* master, float* m,
                float* v, const AdamWArgs& p) {
  enter(ctx, "adamw");
  if (p.step < 1) throw OpError("adamw: step must be >= 1, got " + std::to_string(p.step));
  if (n == 0) return;
  const float bc1 = 1.f - float(std::pow(double(p.beta1), double(p.step)));
  const float bc2 = 1.f - float(std::pow(double(p.beta2), double(p.step)));
  const float decay = 1.f - p.lr * p.weight_decay;
  PT_DISPATCH_FLOAT(dt, T, adamw_kernel<T><<<grid_for(n), 256, 0, ctx.stream>>>(
      n, (T*)param, (const T*)grad, master, m, v, p.lr, p.beta1, p.beta2, p.eps, decay, bc1, bc2,
      p.grad_scale, p.grad_scale_dev));
  PT_LAUNCH_CHECK(ctx, "adamw");
}

}  // namespace pt::cuda
