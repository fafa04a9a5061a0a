#include "ops/cross_entropy.h"

#include <cmath>
#include <vector>

#include "cpu/cross_entropy.h"
#include "ops/dispatch.h"

namespace pt::ops {

CrossEntropyTotals cross_entropy(const In& logits, const In& targets, double ignore, const std::optional<Tensor>& dlogits,
                                 double grad_scale) {
  const char* op = "crossEntropy";
  const Device dev = same_device(op, {{"logits", &logits}, {"targets", &targets}});
  if (dlogits) same_device(op, {{"logits", &logits}, {"dlogits", &*dlogits}});
  need_float(op, "logits", logits);
  need_ndim(op, "logits", logits, 2);
  need_dtype(op, "targets", targets, DType::I32);
  need_shape(op, "targets", targets, {logits.shape[0]});
  if (dlogits) {
    need_same(op, logits, "logits", *dlogits, "dlogits");
    no_overlap(op, "dlogits", *dlogits, "logits", logits, true);
    no_overlap(op, "dlogits", *dlogits, "targets", targets);
  }
  if (ignore != std::floor(ignore) || std::fabs(ignore) > 2147483647.0) fail(op, "ignoreIndex must be an int32");
  const int64_t N = logits.shape[0], V = logits.shape[1];
  const auto* tg = static_cast<const int32_t*>(targets.data());
  void* dl = dlogits ? dlogits->data() : nullptr;
  switch (dev.kind) {
    case Device::CPU: {
      const CrossEntropyResult r = pt::cross_entropy(logits.dtype, N, V, logits.data(), tg, int32_t(ignore), dl, float(grad_scale));
      return {r.loss_sum, r.count};
    }
    case Device::CUDA:
      PT_CUDA(op, {
        // The CUDA kernel writes per-row losses (review section 5, item 3); this host-returning
        // contract reads them back, one sync point per call, until the model reads the loss once
        // per micro-batch.
        cuda::Context& c = ctx(logits);
        DeviceScratch rows(c, size_t(N > 0 ? N : 1) * sizeof(float), "crossEntropy row losses");
        cuda::cross_entropy(c, logits.dtype, N, V, logits.data(), tg, int32_t(ignore), static_cast<float*>(rows.p), dl, float(grad_scale));
        std::vector<float> loss(static_cast<size_t>(N));
        std::vector<int32_t> t(static_cast<size_t>(N));
        cuda::copy_to_host(c, loss.data(), rows.p, loss.size() * sizeof(float));
        cuda::copy_to_host(c, t.data(), tg, t.size() * sizeof(int32_t));
        if (cuda::take_status(c) & cuda::kBadTarget) fail(op, "a target is outside the vocabulary of logits " + logits.describe());
        CrossEntropyTotals tot{0, 0};
        for (int64_t i = 0; i < N; i++) {
          if (t[size_t(i)] == int32_t(ignore)) continue;
          tot.loss_sum += loss[size_t(i)];
          tot.count++;
        }
        return tot;
      });
  }
  return {0, 0};
}

}  // namespace pt::ops
