#include "adamw.h"

#include <cmath>

namespace pt {

template <typename T>
static void step_t(int64_t n, T* param, const T* grad, float* master, float* m, float* v,
                   const AdamWParams& p) {
  const float bc1 = 1.f - float(std::pow(double(p.beta1), double(p.step)));
  const float bc2 = 1.f - float(std::pow(double(p.beta2), double(p.step)));
  const float decay = 1.f - p.lr * p.weight_decay;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float g = load(grad, i) * p.grad_scale;
    const float mi = p.beta1 * m[i] + (1.f - p.beta1) * g;
    const float vi = p.beta2 * v[i] + (1.f - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    // torch: p *= 1 - lr*wd; p -= lr * mhat / (sqrt(vhat) + eps)
    const float w = master[i] * decay - p.lr * (mi / bc1) / (std::sqrt(vi / bc2) + p.eps);
    master[i] = w;
    store(param, i, w);
  }
}

void adamw_step(DType dt, int64_t n, void* param, const void* grad, float* master, float* m, float* v,
                const AdamWParams& p) {
  if (p.step < 1) throw OpError("adamw: step must be >= 1, got " + std::to_string(p.step));
  if (dt == DType::BF16) step_t(n, (bf16*)param, (const bf16*)grad, master, m, v, p);
  else step_t(n, (float*)param, (const float*)grad, master, m, v, p);
}

}  // namespace pt
