// The op bindings: argument checks with messages naming the op and the shapes, then the CPU kernels.
#include <cmath>

#include "bindings.h"
#include "cpu/adamw.h"
#include "cpu/attention.h"
#include "cpu/cross_entropy.h"
#include "cpu/elementwise.h"
#include "cpu/embedding.h"
#include "cpu/gemm.h"
#include "cpu/peak.h"
#include "cpu/rmsnorm.h"
#include "cpu/rope.h"
#include "cpu/swiglu.h"

namespace pt {
namespace {

[[noreturn]] void fail(const char* op, const std::string& msg) { throw OpError(std::string(op) + ": " + msg); }

void need_float(const char* op, const char* name, const Tensor& t) {
  if (t.dtype == DType::I32) fail(op, std::string(name) + " " + t.describe() + " must be bf16 or f32");
}

void need_dtype(const char* op, const char* name, const Tensor& t, DType dt) {
  if (t.dtype != dt) fail(op, std::string(name) + " " + t.describe() + " must be " + dtype_name(dt));
}

void need_shape(const char* op, const char* name, const Tensor& t, const std::vector<int64_t>& shape) {
  if (t.shape != shape) fail(op, std::string(name) + " " + t.describe() + " must have shape " + shape_str(shape));
}

void need_ndim(const char* op, const char* name, const Tensor& t, size_t nd) {
  if (t.shape.size() != nd) fail(op, std::string(name) + " " + t.describe() + " must have " + std::to_string(nd) + " dimensions");
}

bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.storage != b.storage || a.nbytes() == 0 || b.nbytes() == 0) return false;
  return a.byte_offset < b.byte_offset + b.nbytes() && b.byte_offset < a.byte_offset + a.nbytes();
}

// Kernels read inputs while they write outputs, in parallel: an output may share memory with an
// input only where the kernel is written for it, and then only as the very same tensor.
void no_overlap(const char* op, const char* on, const Tensor& out, const char* in, const Tensor& x, bool same_ok = false) {
  if (!overlaps(out, x)) return;
  if (same_ok && out.byte_offset == x.byte_offset && out.nbytes() == x.nbytes() && out.dtype == x.dtype) return;
  fail(op, std::string(on) + " " + out.describe() + " overlaps the memory of " + in + " " + x.describe() +
               (same_ok ? " (only the very same tensor may be passed as both)" : ""));
}

Napi::Value matmul(const Napi::CallbackInfo& info) {
  const char* op = "matmul";
  Tensor a = arg_tensor(info, 0, op, "a");
  Tensor b = arg_input(info, 1, op, "b");  // read only: its packing may be cached
  Tensor c = arg_tensor(info, 2, op, "out");
  const bool ta = arg_bool(info, 3, op, "transA"), tb = arg_bool(info, 4, op, "transB");
  const bool acc = arg_bool(info, 5, op, "accumulate");
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
    fail(op, std::string("inner dimensions differ: a") + (ta ? "ᵀ " : " ") + a.describe() + " and b" +
                 (tb ? "ᵀ " : " ") + b.describe());
  }
  need_shape(op, "out", c, {M, N});
  no_overlap(op, "out", c, "a", a);
  no_overlap(op, "out", c, "b", b);
  // The version is read after every argument is parsed (JS getters may have run in between).
  const PackKey bkey{b.storage->id, b.storage->version.load(), b.byte_offset};
  gemm(a.dtype, ta, tb, M, N, K, a.data(), a.shape[1], b.data(), b.shape[1], c.data(), N, acc,
       b.storage->exposed ? nullptr : &bkey);
  return info.Env().Undefined();
}

Napi::Value embedding(const Napi::CallbackInfo& info) {
  const char* op = "embedding";
  Tensor ids = arg_tensor(info, 0, op, "ids");
  Tensor w = arg_tensor(info, 1, op, "weight");
  Tensor out = arg_tensor(info, 2, op, "out");
  need_dtype(op, "ids", ids, DType::I32);
  need_float(op, "weight", w);
  need_ndim(op, "weight", w, 2);
  need_dtype(op, "out", out, w.dtype);
  need_shape(op, "out", out, {ids.numel(), w.shape[1]});
  no_overlap(op, "out", out, "weight", w);
  no_overlap(op, "out", out, "ids", ids);
  embedding_forward(w.dtype, ids.numel(), w.shape[0], w.shape[1], (const int32_t*)ids.data(), w.data(), out.data());
  return info.Env().Undefined();
}

Napi::Value embedding_bwd(const Napi::CallbackInfo& info) {
  const char* op = "embeddingBackward";
  Tensor ids = arg_tensor(info, 0, op, "ids");
  Tensor dout = arg_tensor(info, 1, op, "dout");
  Tensor dw = arg_tensor(info, 2, op, "dweight");
  need_dtype(op, "ids", ids, DType::I32);
  need_float(op, "dweight", dw);
  need_ndim(op, "dweight", dw, 2);
  need_dtype(op, "dout", dout, dw.dtype);
  need_shape(op, "dout", dout, {ids.numel(), dw.shape[1]});
  no_overlap(op, "dweight", dw, "dout", dout);
  no_overlap(op, "dweight", dw, "ids", ids);
  embedding_backward(dw.dtype, ids.numel(), dw.shape[0], dw.shape[1], (const int32_t*)ids.data(), dout.data(), dw.data());
  return info.Env().Undefined();
}

Napi::Value rmsnorm(const Napi::CallbackInfo& info) {
  const char* op = "rmsnorm";
  Tensor x = arg_tensor(info, 0, op, "x");
  Tensor w = arg_tensor(info, 1, op, "weight");
  const double eps = arg_number(info, 2, op, "eps");
  Tensor out = arg_tensor(info, 3, op, "out");
  Tensor rstd = arg_tensor(info, 4, op, "rstd");
  need_float(op, "x", x);
  need_ndim(op, "x", x, 2);
  need_dtype(op, "weight", w, x.dtype);
  need_shape(op, "weight", w, {x.shape[1]});
  need_dtype(op, "out", out, x.dtype);
  need_shape(op, "out", out, x.shape);
  need_dtype(op, "rstd", rstd, DType::F32);
  need_shape(op, "rstd", rstd, {x.shape[0]});
  if (!(eps > 0)) fail(op, "eps must be positive");
  no_overlap(op, "out", out, "x", x, true);
  no_overlap(op, "out", out, "weight", w);
  no_overlap(op, "rstd", rstd, "x", x);
  no_overlap(op, "rstd", rstd, "out", out);
  rmsnorm_forward(x.dtype, x.shape[0], x.shape[1], float(eps), x.data(), w.data(), out.data(), (float*)rstd.data());
  return info.Env().Undefined();
}

Napi::Value rmsnorm_bwd(const Napi::CallbackInfo& info) {
  const char* op = "rmsnormBackward";
  Tensor x = arg_tensor(info, 0, op, "x");
  Tensor w = arg_tensor(info, 1, op, "weight");
  Tensor rstd = arg_tensor(info, 2, op, "rstd");
  Tensor dout = arg_tensor(info, 3, op, "dout");
  Tensor dx = arg_tensor(info, 4, op, "dx");
  Tensor dw = arg_tensor(info, 5, op, "dweight");
  need_float(op, "x", x);
  need_ndim(op, "x", x, 2);
  for (auto [n, t] : {std::pair{"dout", &dout}, {"dx", &dx}}) {
    need_dtype(op, n, *t, x.dtype);
    need_shape(op, n, *t, x.shape);
  }
  for (auto [n, t] : {std::pair{"weight", &w}, {"dweight", &dw}}) {
    need_dtype(op, n, *t, x.dtype);
    need_shape(op, n, *t, {x.shape[1]});
  }
  need_dtype(op, "rstd", rstd, DType::F32);
  need_shape(op, "rstd", rstd, {x.shape[0]});
  no_overlap(op, "dx", dx, "x", x, true);
  no_overlap(op, "dx", dx, "dout", dout, true);
  no_overlap(op, "dx", dx, "weight", w);
  no_overlap(op, "dx", dx, "rstd", rstd);
  no_overlap(op, "dx", dx, "dweight", dw);
  for (auto [n, t] : {std::pair{"x", &x}, {"weight", &w}, {"rstd", &rstd}, {"dout", &dout}}) no_overlap(op, "dweight", dw, n, *t);
  rmsnorm_backward(x.dtype, x.shape[0], x.shape[1], x.data(), w.data(), (const float*)rstd.data(), dout.data(),
                   dx.data(), dw.data());
  return info.Env().Undefined();
}

Napi::Value rope(const Napi::CallbackInfo& info) {
  const char* op = "rope";
  Tensor x = arg_tensor(info, 0, op, "x");
  Tensor pos = arg_tensor(info, 1, op, "positions");
  Tensor cos = arg_tensor(info, 2, op, "cos");
  Tensor sin = arg_tensor(info, 3, op, "sin");
  Tensor out = arg_tensor(info, 4, op, "out");
  const bool inverse = arg_bool(info, 5, op, "inverse");
  need_float(op, "x", x);
  need_ndim(op, "x", x, 3);
  const int64_t N = x.shape[0], H = x.shape[1], D = x.shape[2];
  if (D % 2) fail(op, "x " + x.describe() + ": head dimension must be even");
  need_dtype(op, "positions", pos, DType::I32);
  need_shape(op, "positions", pos, {N});
  need_dtype(op, "cos", cos, DType::F32);
  need_ndim(op, "cos", cos, 2);
  need_shape(op, "cos", cos, {cos.shape[0], D / 2});
  need_dtype(op, "sin", sin, DType::F32);
  need_shape(op, "sin", sin, cos.shape);
  need_dtype(op, "out", out, x.dtype);
  need_shape(op, "out", out, x.shape);
  no_overlap(op, "out", out, "x", x, true);
  for (auto [n, t] : {std::pair{"positions", &pos}, {"cos", &cos}, {"sin", &sin}}) no_overlap(op, "out", out, n, *t);
  rope_apply(x.dtype, N, H, D, cos.shape[0], (const int32_t*)pos.data(), (const float*)cos.data(),
             (const float*)sin.data(), x.data(), out.data(), inverse);
  return info.Env().Undefined();
}

struct AttnDims {
  int64_t B, Tq, Tk, Hq, Hkv, D;
};

AttnDims attn_check(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<Tensor>& doc) {
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

Napi::Value attention(const Napi::CallbackInfo& info) {
  const char* op = "attention";
  Tensor q = arg_tensor(info, 0, op, "q");
  Tensor k = arg_tensor(info, 1, op, "k");
  Tensor v = arg_tensor(info, 2, op, "v");
  std::optional<Tensor> doc = arg_tensor_or_null(info, 3, op, "doc");
  Tensor out = arg_tensor(info, 4, op, "out");
  Tensor lse = arg_tensor(info, 5, op, "lse");
  const double scale = arg_number(info, 6, op, "scale");
  AttnDims d = attn_check(op, q, k, v, doc);
  need_dtype(op, "out", out, q.dtype);
  need_shape(op, "out", out, q.shape);
  need_dtype(op, "lse", lse, DType::F32);
  need_shape(op, "lse", lse, {d.B, d.Hq, d.Tq});
  for (auto [on, o] : {std::pair{"out", &out}, {"lse", &lse}}) {
    for (auto [n, t] : {std::pair{"q", &q}, {"k", &k}, {"v", &v}}) no_overlap(op, on, *o, n, *t);
    if (doc) no_overlap(op, on, *o, "doc", *doc);
  }
  no_overlap(op, "lse", lse, "out", out);
  attention_forward(q.dtype, d.B, d.Tq, d.Tk, d.Hq, d.Hkv, d.D, float(scale), q.data(), k.data(), v.data(),
                    doc ? (const int32_t*)doc->data() : nullptr, out.data(), (float*)lse.data());
  return info.Env().Undefined();
}

Napi::Value attention_bwd(const Napi::CallbackInfo& info) {
  const char* op = "attentionBackward";
  Tensor q = arg_tensor(info, 0, op, "q");
  Tensor k = arg_tensor(info, 1, op, "k");
  Tensor v = arg_tensor(info, 2, op, "v");
  std::optional<Tensor> doc = arg_tensor_or_null(info, 3, op, "doc");
  Tensor out = arg_tensor(info, 4, op, "out");
  Tensor dout = arg_tensor(info, 5, op, "dout");
  Tensor lse = arg_tensor(info, 6, op, "lse");
  Tensor dq = arg_tensor(info, 7, op, "dq");
  Tensor dk = arg_tensor(info, 8, op, "dk");
  Tensor dv = arg_tensor(info, 9, op, "dv");
  const double scale = arg_number(info, 10, op, "scale");
  AttnDims d = attn_check(op, q, k, v, doc);
  if (d.Tq != d.Tk) fail(op, "backward needs as many query as key positions: q " + q.describe() + ", k " + k.describe());
  for (auto [n, t] : {std::pair{"out", &out}, {"dout", &dout}, {"dq", &dq}}) {
    need_dtype(op, n, *t, q.dtype);
    need_shape(op, n, *t, q.shape);
  }
  for (auto [n, t] : {std::pair{"dk", &dk}, {"dv", &dv}}) {
    need_dtype(op, n, *t, q.dtype);
    need_shape(op, n, *t, k.shape);
  }
  need_dtype(op, "lse", lse, DType::F32);
  need_shape(op, "lse", lse, {d.B, d.Hq, d.Tq});
  const std::pair<const char*, Tensor*> outs[] = {{"dq", &dq}, {"dk", &dk}, {"dv", &dv}};
  for (size_t i = 0; i < 3; i++) {
    for (auto [n, t] : {std::pair{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"dout", &dout}, {"lse", &lse}}) {
      no_overlap(op, outs[i].first, *outs[i].second, n, *t);
    }
    if (doc) no_overlap(op, outs[i].first, *outs[i].second, "doc", *doc);
    for (size_t j = i + 1; j < 3; j++) no_overlap(op, outs[i].first, *outs[i].second, outs[j].first, *outs[j].second);
  }
  attention_backward(q.dtype, d.B, d.Tq, d.Hq, d.Hkv, d.D, float(scale), q.data(), k.data(), v.data(),
                     doc ? (const int32_t*)doc->data() : nullptr, out.data(), dout.data(), (const float*)lse.data(),
                     dq.data(), dk.data(), dv.data());
  return info.Env().Undefined();
}

// Elementwise ops take any shapes with equal element counts: they act on flat buffers.
void need_same(const char* op, const Tensor& a, const char* an, const Tensor& b, const char* bn) {
  if (a.dtype != b.dtype || a.shape != b.shape) {
    fail(op, std::string(an) + " " + a.describe() + " and " + bn + " " + b.describe() + " must match in dtype and shape");
  }
}

Napi::Value swiglu(const Napi::CallbackInfo& info) {
  const char* op = "swiglu";
  Tensor g = arg_tensor(info, 0, op, "gate");
  Tensor u = arg_tensor(info, 1, op, "up");
  Tensor out = arg_tensor(info, 2, op, "out");
  need_float(op, "gate", g);
  need_same(op, g, "gate", u, "up");
  need_same(op, g, "gate", out, "out");
  no_overlap(op, "out", out, "gate", g, true);
  no_overlap(op, "out", out, "up", u, true);
  swiglu_forward(g.dtype, g.numel(), g.data(), u.data(), out.data());
  return info.Env().Undefined();
}

Napi::Value swiglu_bwd(const Napi::CallbackInfo& info) {
  const char* op = "swigluBackward";
  Tensor g = arg_tensor(info, 0, op, "gate");
  Tensor u = arg_tensor(info, 1, op, "up");
  Tensor dout = arg_tensor(info, 2, op, "dout");
  Tensor dg = arg_tensor(info, 3, op, "dgate");
  Tensor du = arg_tensor(info, 4, op, "dup");
  need_float(op, "gate", g);
  need_same(op, g, "gate", u, "up");
  need_same(op, g, "gate", dout, "dout");
  need_same(op, g, "gate", dg, "dgate");
  need_same(op, g, "gate", du, "dup");
  for (auto [on, o] : {std::pair{"dgate", &dg}, {"dup", &du}}) {
    for (auto [n, t] : {std::pair{"gate", &g}, {"up", &u}, {"dout", &dout}}) no_overlap(op, on, *o, n, *t, true);
  }
  no_overlap(op, "dgate", dg, "dup", du);
  swiglu_backward(g.dtype, g.numel(), g.data(), u.data(), dout.data(), dg.data(), du.data());
  return info.Env().Undefined();
}

Napi::Value add_op(const Napi::CallbackInfo& info) {
  const char* op = "add";
  Tensor a = arg_tensor(info, 0, op, "a");
  Tensor b = arg_tensor(info, 1, op, "b");
  Tensor out = arg_tensor(info, 2, op, "out");
  need_float(op, "a", a);
  need_same(op, a, "a", b, "b");
  need_same(op, a, "a", out, "out");
  no_overlap(op, "out", out, "a", a, true);
  no_overlap(op, "out", out, "b", b, true);
  add(a.dtype, a.numel(), a.data(), b.data(), out.data());
  return info.Env().Undefined();
}

Napi::Value cast_op(const Napi::CallbackInfo& info) {
  const char* op = "cast";
  Tensor src = arg_tensor(info, 0, op, "src");
  Tensor dst = arg_tensor(info, 1, op, "dst");
  if (src.shape != dst.shape) fail(op, "src " + src.describe() + " and dst " + dst.describe() + " must have one shape");
  if ((src.dtype == DType::I32) != (dst.dtype == DType::I32)) {
    fail(op, "cannot cast between " + src.describe() + " and " + dst.describe());
  }
  no_overlap(op, "dst", dst, "src", src, true);
  cast(src.dtype, dst.dtype, src.numel(), src.data(), dst.data());
  return info.Env().Undefined();
}

Napi::Value fill_op(const Napi::CallbackInfo& info) {
  Tensor t = arg_tensor(info, 0, "fill", "t");
  const double value = arg_number(info, 1, "fill", "value");
  if (t.dtype == DType::I32 && !(value == std::floor(value) && std::fabs(value) <= 2147483647.0)) {
    fail("fill", "value " + std::to_string(value) + " is not an int32 for " + t.describe());
  }
  fill(t.dtype, t.numel(), value, t.data());
  return info.Env().Undefined();
}

Napi::Value scale_op(const Napi::CallbackInfo& info) {
  Tensor t = arg_tensor(info, 0, "scale", "t");
  need_float("scale", "t", t);
  scale(t.dtype, t.numel(), float(arg_number(info, 1, "scale", "s")), t.data());
  return info.Env().Undefined();
}

// sumSquares(t[, out, index]): with out, the double sum goes to out[2·index] and out[2·index + 1]
// as an f32 (hi, lo) pair, so several reductions are read back at once and hi + lo keeps the
// double's precision.
Napi::Value sum_squares_op(const Napi::CallbackInfo& info) {
  const char* op = "sumSquares";
  Tensor t = arg_input(info, 0, op, "t");
  need_float(op, "t", t);
  std::optional<Tensor> out = info.Length() > 1 ? arg_tensor_or_null(info, 1, op, "out") : std::nullopt;
  if (!out) return Napi::Number::New(info.Env(), sum_squares(t.dtype, t.numel(), t.data()));
  const double index = arg_number(info, 2, op, "index");
  need_dtype(op, "out", *out, DType::F32);
  if (!(index >= 0 && index == std::floor(index) && 2 * index + 1 < double(out->numel()))) {
    fail(op, "index " + std::to_string(index) + " has no (hi, lo) pair in out " + out->describe());
  }
  no_overlap(op, "out", *out, "t", t);
  const double s = sum_squares(t.dtype, t.numel(), t.data());
  float* o = static_cast<float*>(out->data()) + 2 * int64_t(index);
  o[0] = float(s);
  o[1] = float(s - double(o[0]));
  return info.Env().Undefined();
}

Napi::Value cross_entropy_op(const Napi::CallbackInfo& info) {
  const char* op = "crossEntropy";
  Tensor logits = arg_tensor(info, 0, op, "logits");
  Tensor targets = arg_tensor(info, 1, op, "targets");
  const double ignore = arg_number(info, 2, op, "ignoreIndex");
  Tensor losses = arg_tensor(info, 3, op, "losses");
  std::optional<Tensor> dlogits = arg_tensor_or_null(info, 4, op, "dlogits");
  const double grad_scale = arg_number(info, 5, op, "gradScale");
  need_float(op, "logits", logits);
  need_ndim(op, "logits", logits, 2);
  need_dtype(op, "targets", targets, DType::I32);
  need_shape(op, "targets", targets, {logits.shape[0]});
  need_dtype(op, "losses", losses, DType::F32);
  need_shape(op, "losses", losses, {logits.shape[0]});
  no_overlap(op, "losses", losses, "logits", logits);
  no_overlap(op, "losses", losses, "targets", targets);
  if (dlogits) no_overlap(op, "dlogits", *dlogits, "losses", losses);
  if (dlogits) {
    need_same(op, logits, "logits", *dlogits, "dlogits");
    no_overlap(op, "dlogits", *dlogits, "logits", logits, true);
    no_overlap(op, "dlogits", *dlogits, "targets", targets);
  }
  if (ignore != std::floor(ignore) || std::fabs(ignore) > 2147483647.0) fail(op, "ignoreIndex must be an int32");
  cross_entropy(logits.dtype, logits.shape[0], logits.shape[1], logits.data(), (const int32_t*)targets.data(),
                int32_t(ignore), (float*)losses.data(), dlogits ? dlogits->data() : nullptr, float(grad_scale));
  return info.Env().Undefined();
}

Napi::Value adamw_op(const Napi::CallbackInfo& info) {
  const char* op = "adamw";
  Tensor param = arg_tensor(info, 0, op, "param");
  Tensor grad = arg_tensor(info, 1, op, "grad");
  std::optional<Tensor> master = arg_tensor_or_null(info, 2, op, "master");
  Tensor m = arg_tensor(info, 3, op, "m");
  Tensor v = arg_tensor(info, 4, op, "v");
  if (!info[5].IsObject()) fail(op, "options must be an object");
  Napi::Object o = info[5].As<Napi::Object>();
  auto num = [&](const char* key) {
    Napi::Value x = o.Get(key);
    if (!x.IsNumber()) fail(op, std::string("option '") + key + "' must be a number");
    return x.As<Napi::Number>().DoubleValue();
  };
  const double step = num("step");
  if (!(step >= 1 && step <= 9.0e15 && step == std::floor(step))) fail(op, "option 'step' must be an integer >= 1");
  AdamWParams p{float(num("lr")), float(num("beta1")), float(num("beta2")), float(num("eps")),
                float(num("weightDecay")), int64_t(step), float(num("gradScale"))};
  need_float(op, "param", param);
  need_same(op, param, "param", grad, "grad");
  Tensor mast = master ? *master : param;
  if (!master && param.dtype != DType::F32) fail(op, "a bf16 param " + param.describe() + " needs fp32 master weights");
  for (auto [n, t] : {std::pair{"master", &mast}, {"m", &m}, {"v", &v}}) {
    need_dtype(op, n, *t, DType::F32);
    need_shape(op, n, *t, param.shape);
  }
  for (auto [on, o] : {std::pair{"param", &param}, {"master", &mast}, {"m", &m}, {"v", &v}}) {
    for (auto [n, t] : {std::pair{"grad", &grad}, {"m", &m}, {"v", &v}}) {
      if (o != t) no_overlap(op, on, *o, n, *t);
    }
  }
  if (master) no_overlap(op, "param", param, "master", *master, true);
  adamw_step(param.dtype, param.numel(), param.data(), grad.data(), (float*)mast.data(), (float*)m.data(),
             (float*)v.data(), p);
  return info.Env().Undefined();
}

// peakGflops(dtype, ms): the measured FMA (f32) or vdpbf16ps (bf16) peak, for benchmarks.
Napi::Value pack_cache_stats_op(const Napi::CallbackInfo& info) {
  const PackCacheStats st = pack_cache_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("entries", double(st.entries));
  o.Set("bytes", double(st.bytes));
  o.Set("hits", double(st.hits));
  o.Set("fills", double(st.fills));
  o.Set("limitBytes", double(st.limit_bytes));
  return o;
}

Napi::Value peak_gflops_op(const Napi::CallbackInfo& info) {
  const char* op = "peakGflops";
  if (info.Length() < 1 || !info[0].IsString()) fail(op, "dtype must be 'f32' or 'bf16'");
  const std::string dt = info[0].As<Napi::String>().Utf8Value();
  if (dt != "f32" && dt != "bf16") fail(op, "dtype must be 'f32' or 'bf16', not '" + dt + "'");
  const double ms = arg_number(info, 1, op, "ms");
  if (!(ms > 0 && ms <= 2000)) fail(op, "ms must be in (0, 2000]");
  return Napi::Number::New(info.Env(), peak_gflops(dt == "bf16", ms));
}

}  // namespace

void register_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("peakGflops", Napi::Function::New(env, guarded<peak_gflops_op>));
  exports.Set("packCacheStats", Napi::Function::New(env, guarded<pack_cache_stats_op>));
  exports.Set("matmul", Napi::Function::New(env, guarded<matmul>));
  exports.Set("embedding", Napi::Function::New(env, guarded<embedding>));
  exports.Set("embeddingBackward", Napi::Function::New(env, guarded<embedding_bwd>));
  exports.Set("rmsnorm", Napi::Function::New(env, guarded<rmsnorm>));
  exports.Set("rmsnormBackward", Napi::Function::New(env, guarded<rmsnorm_bwd>));
  exports.Set("rope", Napi::Function::New(env, guarded<rope>));
  exports.Set("attention", Napi::Function::New(env, guarded<attention>));
  exports.Set("attentionBackward", Napi::Function::New(env, guarded<attention_bwd>));
  exports.Set("swiglu", Napi::Function::New(env, guarded<swiglu>));
  exports.Set("swigluBackward", Napi::Function::New(env, guarded<swiglu_bwd>));
  exports.Set("add", Napi::Function::New(env, guarded<add_op>));
  exports.Set("cast", Napi::Function::New(env, guarded<cast_op>));
  exports.Set("fill", Napi::Function::New(env, guarded<fill_op>));
  exports.Set("scale", Napi::Function::New(env, guarded<scale_op>));
  exports.Set("sumSquares", Napi::Function::New(env, guarded<sum_squares_op>));
  exports.Set("crossEntropy", Napi::Function::New(env, guarded<cross_entropy_op>));
  exports.Set("adamw", Napi::Function::New(env, guarded<adamw_op>));
  register_kv_ops(env, exports);
}

}  // namespace pt
