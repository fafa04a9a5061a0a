#include "ops/matmul.h"

#include "cpu/gemm.h"
#include "ops/dispatch.h"

namespace pt::ops {

void matmul(const In& a, const In& b, const Tensor& c, bool ta, bool tb, bool acc) {
  const char* op = "matmul";
  const Device dev = same_device(op, {{"a", &a}, {"b", &b}, {"out", &c}});
  need_float(op, "a", a);
  need_ndim(op, "a", a, 2);
  need_ndim(op, "b", b, 2);
  need_ndim(op, "out", c, 2);
  if (b.dtype != a.dtype || c.dtype != a.dtype) {
    fail(op, "a " + a.describe() + ", b " + b.describe() + " and out " + c.describe() + " must share one dtype");
  }
  const int64_t M = ta ? a.shape[1] : a.shape[0], K = ta ? a.shape[0] : a.shape[1];
  const int64_t Kb = tb ? b.shape[1] : b.shape[0], N = tb ? b.shape[0] : b.shape[1];
  if (K != Kb) {
    fail(op, std::string("inner dimensions differ: a") + (ta ? "ᵀ " : " ") + a.describe() + " and b" + (tb ? "ᵀ " : " ") +
                 b.describe());
  }
  need_shape(op, "out", c, {M, N});
  no_overlap(op, "out", c, "a", a);
  no_overlap(op, "out", c, "b", b);
  switch (dev.kind) {
    case Device::CPU: {
      // Every argument has been read (the binder reads them all first, and JS getters may run in
      // between), so this version is the one the product sees.
      const PackKey bkey{b.storage->id, b.storage->version.load(), b.byte_offset};
      pt::gemm(a.dtype, ta, tb, M, N, K, a.data(), a.shape[1], b.data(), b.shape[1], c.data(), N, acc,
               b.storage->exposed() ? nullptr : &bkey);
      break;
    }
    case Device::CUDA:
      PT_CUDA(op, cuda::gemm(ctx(a), a.dtype, ta, tb, M, N, K, a.data(), a.shape[1], b.data(), b.shape[1], c.data(), N, acc));
      break;
  }
}

}  // namespace pt::ops
