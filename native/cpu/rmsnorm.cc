#include "rmsnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace pt {

template <typename T>
static void forward(int64_t N, int64_t C, float eps, const T* x, const T* w, T* out, float* rstd) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const T* xr = x + n * C;
    float ss = 0.f;
    for (int64_t c = 0; c < C; c++) {
      float v = load(xr, c);
      ss += v * v;
    }
    float r = 1.f / std::sqrt(ss / float(C) + eps);
    rstd[n] = r;
    // Hugging Face rounds the normalised x to the working dtype before the weight multiply.
    for (int64_t c = 0; c < C; c++) {
      T normed;
      store(&normed, 0, load(xr, c) * r);
      store(out + n * C, c, load(&normed, 0) * load(w, c));
    }
  }
}

template <typename T>
static void backward(int64_t N, int64_t C, const T* x, const T* w, const float* rstd, const T* dout,
                     T* dx, T* dw) {
  // dw is summed over fixed blocks of rows, then over the blocks in order: the same result
  // whatever the thread count, so a run resumed on another machine computes the same weights.
  constexpr int64_t kRows = 64;
  const int64_t nb = (N + kRows - 1) / kRows;
  std::vector<float> partial(size_t(nb) * size_t(C), 0.f);
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t b = 0; b < nb; b++) {
    float* dwp = partial.data() + size_t(b) * size_t(C);
    for (int64_t n = b * kRows; n < std::min(N, (b + 1) * kRows); n++) {
      const T* xr = x + n * C;
      const T* gr = dout + n * C;
      const float r = rstd[n];
      // y_c = xhat_c w_c, xhat = x r: dx = r (g w - xhat * mean(g w xhat)).
      float dot = 0.f;
      for (int64_t c = 0; c < C; c++) dot += load(gr, c) * load(w, c) * load(xr, c) * r;
      dot /= float(C);
      for (int64_t c = 0; c < C; c++) {
        const float xhat = load(xr, c) * r;
        const float g = load(gr, c);
        dwp[c] += g * xhat;
        store(dx + n * C, c, r * (g * load(w, c) - xhat * dot));
      }
    }
  }
  for (int64_t c = 0; c < C; c++) {
    float s = load(dw, c);
    for (int64_t b = 0; b < nb; b++) s += partial[size_t(b) * size_t(C) + size_t(c)];
    store(dw, c, s);
  }
}

void rmsnorm_forward(DType dt, int64_t N, int64_t C, float eps, const void* x, const void* w,
                     void* out, float* rstd) {
  if (dt == DType::BF16) forward(N, C, eps, (const bf16*)x, (const bf16*)w, (bf16*)out, rstd);
  else forward(N, C, eps, (const float*)x, (const float*)w, (float*)out, rstd);
}

void rmsnorm_backward(DType dt, int64_t N, int64_t C, const void* x, const void* w, const float* rstd,
                      const void* dout, void* dx, void* dw) {
  if (dt == DType::BF16)
    backward(N, C, (const bf16*)x, (const bf16*)w, rstd, (const bf16*)dout, (bf16*)dx, (bf16*)dw);
  else
    backward(N, C, (const float*)x, (const float*)w, rstd, (const float*)dout, (float*)dx, (float*)dw);
}

}  // namespace pt
