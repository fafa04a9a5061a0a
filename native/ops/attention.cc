#include "ops/attention.h"

#include "cpu/attention.h"
#include "ops/dispatch.h"

namespace pt::ops {
namespace {

struct AttnDims {
  int64_t B, Tq, Tk, Hq, Hkv, D;
};

AttnDims attn_check(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<In>& doc) {
  need_float(op, "q", q);
  need_ndim(op, "q", q, 4);
  need_ndim(op, "k", k, 4);
  AttnDims d{q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3]};
  need_dtype(op, "k", k, q.dtype);
  need_dtype(op, "v", v, q.dtype);
  need_shape(op, "v", v, k.shape);
  if (k.shape[0] != d.B || k.shape[3] != d.D) {
    fail(op, "q " + q.describe() + " and k " + k.describe() + " must agree in batch and head dimension");
  }
  if (d.Hkv == 0 || d.Hq % d.Hkv) fail(op, "kv heads of k " + k.describe() + " must divide the query heads of q " + q.describe());
  if (d.Tq > d.Tk) fail(op, "q " + q.describe() + " has more positions than k " + k.describe());
  if (doc) {
    need_dtype(op, "doc", *doc, DType::I32);
    need_shape(op, "doc", *doc, {d.B, d.Tk});
  }
  return d;
}


}  // namespace

void attention(const In& q, const In& k, const In& v, const std::optional<In>& doc, const Tensor& out, const Tensor& lse, double scale) {
  const char* op = "attention";
  const Device dev = same_device(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"lse", &lse}});
  if (doc) same_device(op, {{"q", &q}, {"doc", &*doc}});
  const AttnDims d = attn_check(op, q, k, v, doc);
  need_dtype(op, "out", out, q.dtype);
  need_shape(op, "out", out, q.shape);
  need_dtype(op, "lse", lse, DType::F32);
  need_shape(op, "lse", lse, {d.B, d.Hq, d.Tq});
  for (auto [on, o] : {Named{"out", &out}, Named{"lse", &lse}}) {
    for (auto [n, t] : {Named{"q", &q}, Named{"k", &k}, Named{"v", &v}}) no_overlap(op, on, *o, n, *t);
    if (doc) no_overlap(op, on, *o, "doc", *doc);
  }
  no_overlap(op, "lse", lse, "out", out);
  const auto* docp = doc ? static_cast<const int32_t*>(doc->data()) : nullptr;
  auto* l = static_cast<float*>(lse.data());
  // The CUDA kernels take FlashAttention's varlen layout (cu_seqlens), which the CPU contract reaches
  // through document ids read on the host. Until the model's Batch carries cu_seqlens (review
  // section 5, item 4) the CUDA arm runs what needs no host read of tensor memory: each batch row as
  // one document, one launch per row (row b of q is [T, Hq, D] at b·T·Hq·D; of lse, [Hq, T]).
  switch (dev.kind) {
    case Device::CPU:
      pt::attention_forward(q.dtype, d.B, d.Tq, d.Tk, d.Hq, d.Hkv, d.D, float(scale), q.data(), k.data(), v.data(), docp, out.data(), l);
      break;
    case Device::CUDA:
      PT_CUDA(op, {
        if (doc) fail(op, "document ids on " + dev.name() + " need cu_seqlens from the batch, which the model does not pass yet");
        if (d.Tq != d.Tk) fail(op, "q " + q.describe() + " and k " + k.describe() + ": the CUDA kernel attends a sequence to itself (Tq == Tk)");
        cuda::Context& c = ctx(q);
        DeviceScratch cu(c, 2 * sizeof(int32_t), "attention cu_seqlens");
        const int32_t host_cu[2] = {0, int32_t(d.Tq)};
        cuda::copy_to_device(c, cu.p, host_cu, sizeof host_cu);
        const size_t es = dtype_size(q.dtype), qrow = size_t(d.Tq * d.Hq * d.D) * es, krow = size_t(d.Tk * d.Hkv * d.D) * es;
        for (int64_t b = 0; b < d.B; b++) {
          cuda::attention_forward(c, q.dtype, d.Tq, 1, d.Tq, d.Hq, d.Hkv, d.D, float(scale), static_cast<const int32_t*>(cu.p),
                                  static_cast<const char*>(q.data()) + b * qrow, static_cast<const char*>(k.data()) + b * krow,
                                  static_cast<const char*>(v.data()) + b * krow, static_cast<char*>(out.data()) + b * qrow,
                                  l + b * d.Hq * d.Tq);
        }
      });
      break;
  }
}

void attention_backward(const In& q, const In& k, const In& v, const std::optional<In>& doc, const In& out, const In& dout,
                        const In& lse, const Tensor& dq, const Tensor& dk, const Tensor& dv, double scale) {
  const char* op = "attentionBackward";
  const Device dev = same_device(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"dout", &dout}, {"lse", &lse},
                                      {"dq", &dq}, {"dk", &dk}, {"dv", &dv}});
  if (doc) same_device(op, {{"q", &q}, {"doc", &*doc}});
  const AttnDims d = attn_check(op, q, k, v, doc);
  if (d.Tq != d.Tk) fail(op, "backward needs as many query as key positions: q " + q.describe() + ", k " + k.describe());
  for (auto [n, t] : {Named{"out", &out}, Named{"dout", &dout}, Named{"dq", &dq}}) {
    need_dtype(op, n, *t, q.dtype);
    need_shape(op, n, *t, q.shape);
  }
  for (auto [n, t] : {Named{"dk", &dk}, Named{"dv", &dv}}) {
    need_dtype(op, n, *t, q.dtype);
    need_shape(op, n, *t, k.shape);
  }
  need_dtype(op, "lse", lse, DType::F32);
  need_shape(op, "lse", lse, {d.B, d.Hq, d.Tq});
  const Named outs[] = {{"dq", &dq}, {"dk", &dk}, {"dv", &dv}};
  for (size_t i = 0; i < 3; i++) {
    for (auto [n, t] : {Named{"q", &q}, Named{"k", &k}, Named{"v", &v}, Named{"out", &out}, Named{"dout", &dout}, Named{"lse", &lse}}) {
      no_overlap(op, outs[i].first, *outs[i].second, n, *t);
    }
    if (doc) no_overlap(op, outs[i].first, *outs[i].second, "doc", *doc);
    for (size_t j = i + 1; j < 3; j++) no_overlap(op, outs[i].first, *outs[i].second, outs[j].first, *outs[j].second);
  }
  const auto* docp = doc ? static_cast<const int32_t*>(doc->data()) : nullptr;
  const auto* l = static_cast<const float*>(lse.data());
  switch (dev.kind) {
    case Device::CPU:
      pt::attention_backward(q.dtype, d.B, d.Tq, d.Hq, d.Hkv, d.D, float(scale), q.data(), k.data(), v.data(), docp, out.data(),
                             dout.data(), l, dq.data(), dk.data(), dv.data());
      break;
    case Device::CUDA:
      PT_CUDA(op, {
        if (doc) fail(op, "document ids on " + dev.name() + " need cu_seqlens from the batch, which the model does not pass yet");
        cuda::Context& c = ctx(q);
        DeviceScratch cu(c, 2 * sizeof(int32_t), "attentionBackward cu_seqlens");
        const int32_t host_cu[2] = {0, int32_t(d.Tq)};
        cuda::copy_to_device(c, cu.p, host_cu, sizeof host_cu);
        const size_t es = dtype_size(q.dtype), qrow = size_t(d.Tq * d.Hq * d.D) * es, krow = size_t(d.Tk * d.Hkv * d.D) * es;
        auto at = [](const void* p, size_t off) { return static_cast<const char*>(p) + off; };
        auto mut = [](void* p, size_t off) { return static_cast<char*>(p) + off; };
        for (int64_t b = 0; b < d.B; b++) {
          cuda::attention_backward(c, q.dtype, d.Tq, 1, d.Tq, d.Hq, d.Hkv, d.D, float(scale), static_cast<const int32_t*>(cu.p),
                                   at(q.data(), b * qrow), at(k.data(), b * krow), at(v.data(), b * krow), at(out.data(), b * qrow),
                                   at(dout.data(), b * qrow), l + b * d.Hq * d.Tq, mut(dq.data(), b * qrow),
                                   mut(dk.data(), b * krow), mut(dv.data(), b * krow));
        }
      });
      break;
  }
}

}  // namespace pt::ops
