#include "swiglu.h"

#include <cmath>

namespace pt {

template <typename T>
static void forward(int64_t n, const T* g, const T* u, T* out) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float x = load(g, i);
    store(out, i, x / (1.f + std::exp(-x)) * load(u, i));
  }
}

template <typename T>
static void backward(int64_t n, const T* g, const T* u, const T* dout, T* dg, T* du) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float x = load(g, i), up = load(u, i), d = load(dout, i);
    const float sig = 1.f / (1.f + std::exp(-x));
    const float silu = x * sig;
    store(du, i, d * silu);
    store(dg, i, d * up * sig * (1.f + x * (1.f - sig)));
  }
}

void swiglu_forward(DType dt, int64_t n, const void* gate, const void* up, void* out) {
  if (dt == DType::BF16) forward(n, (const bf16*)gate, (const bf16*)up, (bf16*)out);
  else forward(n, (const float*)gate, (const float*)up, (float*)out);
}

void swiglu_backward(DType dt, int64_t n, const void* gate, const void* up, const void* dout,
                     void* dgate, void* dup) {
  if (dt == DType::BF16)
    backward(n, (const bf16*)gate, (const bf16*)up, (const bf16*)dout, (bf16*)dgate, (bf16*)dup);
  else
    backward(n, (const float*)gate, (const float*)up, (const float*)dout, (float*)dgate, (float*)dup);
}

}  // namespace pt
