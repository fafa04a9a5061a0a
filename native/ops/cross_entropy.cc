#include "ops/cross_entropy.h"

#include <cmath>

#include "cpu/cross_entropy.h"
#include "ops/dispatch.h"

namespace pt::ops {

void cross_entropy(const In& logits, const In& targets, double ignore, const Tensor& losses, const std::optional<Tensor>& dlogits,
                   double grad_scale) {
  const char* op = "crossEntropy";
  const Device dev = same_device(op, {{"logits", &logits}, {"targets", &targets}, {"losses", &losses}});
  if (dlogits) same_device(op, {{"logits", &logits}, {"dlogits", &*dlogits}});
  need_float(op, "logits", logits);
  need_ndim(op, "logits", logits, 2);
  need_dtype(op, "targets", targets, DType::I32);
  need_shape(op, "targets", targets, {logits.shape[0]});
  need_dtype(op, "losses", losses, DType::F32);
  need_shape(op, "losses", losses, {logits.shape[0]});
  no_overlap(op, "losses", losses, "logits", logits);
  no_overlap(op, "losses", losses, "targets", targets);
  if (dlogits) {
    need_same(op, logits, "logits", *dlogits, "dlogits");
    no_overlap(op, "dlogits", *dlogits, "logits", logits, true);
    no_overlap(op, "dlogits", *dlogits, "targets", targets);
    no_overlap(op, "dlogits", *dlogits, "losses", losses);
  }
  if (ignore != std::floor(ignore) || std::fabs(ignore) > 2147483647.0) fail(op, "ignoreIndex must be an int32");
  const int64_t N = logits.shape[0], V = logits.shape[1];
  const auto* tg = static_cast<const int32_t*>(targets.data());
  auto* rows = static_cast<float*>(losses.data());
  void* dl = dlogits ? dlogits->data() : nullptr;
  switch (dev.kind) {
    case Device::CPU: pt::cross_entropy(logits.dtype, N, V, logits.data(), tg, int32_t(ignore), rows, dl, float(grad_scale)); break;
    case Device::CUDA:
      // A target outside the vocabulary sets the context's status word (no device assert); it is
      // read at the next sync point and named there.
      PT_CUDA(op, cuda::cross_entropy(ctx(logits), logits.dtype, N, V, logits.data(), tg, int32_t(ignore), rows, dl, float(grad_scale)));
      break;
  }
}

}  // namespace pt::ops
