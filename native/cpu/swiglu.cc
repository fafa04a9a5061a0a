#include "swiglu.h"

#include "vec.h"

namespace pt {

// Pieces of 2048 vectors go to threads as they come free (a thread that loses its core on a shared
// machine holds up one piece, not a static share); results do not depend on who computes what.
// One template for the vector loop and the scalar remainder (same IEEE operations in the same
// order), so an element's result does not depend on where the thread split puts it.
template <class S, typename T>
static inline void forward_at(const T* g, const T* u, T* out, int64_t i) {
  using V = typename S::V;
  const V x = S::load(g + i);
  const V sig_den = S::add(S::set1(1.f), S::exp(S::sub(S::set1(0.f), x)));
  S::store(out + i, S::mul(S::div(x, sig_den), S::load(u + i)));
}

template <class S, typename T>
static inline void backward_at(const T* g, const T* u, const T* dout, T* dg, T* du, int64_t i) {
  using V = typename S::V;
  const V one = S::set1(1.f);
  const V x = S::load(g + i), up = S::load(u + i), d = S::load(dout + i);
  const V sig = S::div(one, S::add(one, S::exp(S::sub(S::set1(0.f), x))));
  S::store(du + i, S::mul(d, S::mul(x, sig)));
  // d·up·sig·(1 + x·(1 - sig)): the derivative of x·sigmoid(x), times up.
  S::store(dg + i, S::mul(S::mul(S::mul(d, up), sig), S::fmadd(x, S::sub(one, sig), one)));
}

template <typename T>
static void forward(int64_t n, const T* g, const T* u, T* out) {
  using N = vec::Native;
  const int64_t nv = n / N::W;
#pragma omp parallel for schedule(dynamic, 2048) if (n >= kParallelMin)
  for (int64_t b = 0; b < nv; b++) forward_at<N>(g, u, out, b * N::W);
  for (int64_t i = nv * N::W; i < n; i++) forward_at<vec::Scalar>(g, u, out, i);
}

template <typename T>
static void backward(int64_t n, const T* g, const T* u, const T* dout, T* dg, T* du) {
  using N = vec::Native;
  const int64_t nv = n / N::W;
#pragma omp parallel for schedule(dynamic, 2048) if (n >= kParallelMin)
  for (int64_t b = 0; b < nv; b++) backward_at<N>(g, u, dout, dg, du, b * N::W);
  for (int64_t i = nv * N::W; i < n; i++) backward_at<vec::Scalar>(g, u, dout, dg, du, i);
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
