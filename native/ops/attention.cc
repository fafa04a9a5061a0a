#include "ops/attention.h"

#include "cpu/attention.h"
#include "ops/dispatch.h"

#include <vector>

namespace pt::ops {
namespace {

struct AttnDims {
  int64_t B, Tq, Tk, Hq, Hkv, D;
};

AttnDims attn_check(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<In>& cu) {
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
  if (cu) {
    need_dtype(op, "cu_seqlens", *cu, DType::I32);
    need_ndim(op, "cu_seqlens", *cu, 1);
    if (cu->shape[0] < 2) fail(op, "cu_seqlens " + cu->describe() + " must hold at least one document (two offsets)");
  }
  return d;
}

// The longest document bounds the CUDA grid; the caller's Batch knows it (FlashAttention's
// max_seqlen). 0 means the row length, which bounds every document that stays in its row.
int64_t max_len(const char* op, double max_seqlen, int64_t Tk) {
  if (max_seqlen == 0) return Tk;
  if (!(max_seqlen >= 1 && max_seqlen <= double(Tk)) || max_seqlen != double(int64_t(max_seqlen))) {
    fail(op, "maxSeqlen must be an integer in [1, " + std::to_string(Tk) + "] (0 for the row length), got " + std::to_string(max_seqlen));
  }
  return int64_t(max_seqlen);
}

#ifdef POLYTUNE_HAS_CUDA
// Without cu_seqlens each of `rows` rows of T positions is one document: the offsets come from the
// shape alone (nothing is read from tensor memory) and are copied to the device once per call.
const int32_t* row_offsets(cuda::Context& c, std::optional<DeviceScratch>& own, int64_t rows, int64_t T, const char* what) {
  std::vector<int32_t> host(size_t(rows + 1));
  for (int64_t r = 0; r <= rows; r++) host[size_t(r)] = int32_t(r * T);
  own.emplace(c, host.size() * sizeof(int32_t), what);
  cuda::copy_to_device(c, own->p, host.data(), host.size() * sizeof(int32_t));
  return static_cast<const int32_t*>(own->p);
}
#endif

}  // namespace

void attention(const In& q, const In& k, const In& v, const std::optional<In>& cu, const Tensor& out, const Tensor& lse, double scale,
               double max_seqlen) {
  const char* op = "attention";
  const Device dev = same_device(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"lse", &lse}});
  if (cu) same_device(op, {{"q", &q}, {"cu_seqlens", &*cu}});
  const AttnDims d = attn_check(op, q, k, v, cu);
  [[maybe_unused]] const int64_t maxlen = max_len(op, max_seqlen, d.Tk);
  need_dtype(op, "out", out, q.dtype);
  need_shape(op, "out", out, q.shape);
  need_dtype(op, "lse", lse, DType::F32);
  need_shape(op, "lse", lse, {d.B, d.Hq, d.Tq});
  for (auto [on, o] : {Named{"out", &out}, Named{"lse", &lse}}) {
    for (auto [n, t] : {Named{"q", &q}, Named{"k", &k}, Named{"v", &v}}) no_overlap(op, on, *o, n, *t);
    if (cu) no_overlap(op, on, *o, "cu_seqlens", *cu);
  }
  no_overlap(op, "lse", lse, "out", out);
  auto* l = static_cast<float*>(lse.data());
  switch (dev.kind) {
    case Device::CPU: {
      const auto* cup = cu ? static_cast<const int32_t*>(cu->data()) : nullptr;
      pt::attention_forward(q.dtype, d.B, d.Tq, d.Tk, d.Hq, d.Hkv, d.D, float(scale), q.data(), k.data(), v.data(), cup,
                            cu ? cu->shape[0] - 1 : 0, out.data(), l);
      break;
    }
    case Device::CUDA:
      // q [B, T, Hq, D] is the varlen kernel's [B·T, Hq, D], but lse [B, Hq, T] is its [Hq, B·T] only
      // for B = 1: cu_seqlens come with one packed row (the model's layout), and rows without them
      // run one launch per row, each row one document.
      PT_CUDA(op, {
        if (d.Tq != d.Tk) fail(op, "q " + q.describe() + " and k " + k.describe() + ": the CUDA kernel attends a sequence to itself (Tq == Tk)");
        if (cu && d.B != 1) fail(op, "cu_seqlens on " + dev.name() + " index one packed row (B = 1), got q " + q.describe());
        cuda::Context& c = ctx(q);
        std::optional<DeviceScratch> own;
        if (cu) {
          cuda::attention_forward(c, q.dtype, d.Tq, cu->shape[0] - 1, maxlen, d.Hq, d.Hkv, d.D, float(scale),
                                  static_cast<const int32_t*>(cu->data()), q.data(), k.data(), v.data(), out.data(), l);
          break;
        }
        const int32_t* one = row_offsets(c, own, 1, d.Tq, "attention cu_seqlens");
        const size_t es = dtype_size(q.dtype), qrow = size_t(d.Tq * d.Hq * d.D) * es, krow = size_t(d.Tk * d.Hkv * d.D) * es;
        for (int64_t b = 0; b < d.B; b++) {
          cuda::attention_forward(c, q.dtype, d.Tq, 1, d.Tq, d.Hq, d.Hkv, d.D, float(scale), one,
                                  static_cast<const char*>(q.data()) + b * qrow, static_cast<const char*>(k.data()) + b * krow,
                                  static_cast<const char*>(v.data()) + b * krow, static_cast<char*>(out.data()) + b * qrow,
                                  l + b * d.Hq * d.Tq);
        }
      });
      break;
  }
}

void attention_backward(const In& q, const In& k, const In& v, const std::optional<In>& cu, const In& out, const In& dout,
                        const In& lse, const Tensor& dq, const Tensor& dk, const Tensor& dv, double scale, double max_seqlen) {
  const char* op = "attentionBackward";
  const Device dev = same_device(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"dout", &dout}, {"lse", &lse},
                                      {"dq", &dq}, {"dk", &dk}, {"dv", &dv}});
  if (cu) same_device(op, {{"q", &q}, {"cu_seqlens", &*cu}});
  const AttnDims d = attn_check(op, q, k, v, cu);
  [[maybe_unused]] const int64_t maxlen = max_len(op, max_seqlen, d.Tk);
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
    if (cu) no_overlap(op, outs[i].first, *outs[i].second, "cu_seqlens", *cu);
    for (size_t j = i + 1; j < 3; j++) no_overlap(op, outs[i].first, *outs[i].second, outs[j].first, *outs[j].second);
  }
  const auto* l = static_cast<const float*>(lse.data());
  switch (dev.kind) {
    case Device::CPU: {
      const auto* cup = cu ? static_cast<const int32_t*>(cu->data()) : nullptr;
      pt::attention_backward(q.dtype, d.B, d.Tq, d.Hq, d.Hkv, d.D, float(scale), q.data(), k.data(), v.data(), cup,
                             cu ? cu->shape[0] - 1 : 0, out.data(), dout.data(), l, dq.data(), dk.data(), dv.data());
      break;
    }
    case Device::CUDA:
      PT_CUDA(op, {
        if (cu && d.B != 1) fail(op, "cu_seqlens on " + dev.name() + " index one packed row (B = 1), got q " + q.describe());
        cuda::Context& c = ctx(q);
        std::optional<DeviceScratch> own;
        if (cu) {
          cuda::attention_backward(c, q.dtype, d.Tq, cu->shape[0] - 1, maxlen, d.Hq, d.Hkv, d.D, float(scale),
                                   static_cast<const int32_t*>(cu->data()), q.data(), k.data(), v.data(), out.data(), dout.data(), l,
                                   dq.data(), dk.data(), dv.data());
          break;
        }
        const int32_t* one = row_offsets(c, own, 1, d.Tq, "attentionBackward cu_seqlens");
        const size_t es = dtype_size(q.dtype), qrow = size_t(d.Tq * d.Hq * d.D) * es, krow = size_t(d.Tk * d.Hkv * d.D) * es;
        auto at = [](const void* p, size_t off) { return static_cast<const char*>(p) + off; };
        auto mut = [](void* p, size_t off) { return static_cast<char*>(p) + off; };
        for (int64_t b = 0; b < d.B; b++) {
          cuda::attention_backward(c, q.dtype, d.Tq, 1, d.Tq, d.Hq, d.Hkv, d.D, float(scale), one,
                                   at(q.data(), b * qrow), at(k.data(), b * krow), at(v.data(), b * krow), at(out.data(), b * qrow),
                                   at(dout.data(), b * qrow), l + b * d.Hq * d.Tq, mut(dq.data(), b * qrow),
                                   mut(dk.data(), b * krow), mut(dv.data(), b * krow));
        }
      });
      break;
  }
}

}  // namespace pt::ops
