// Binding of the KV-cache attention used by incremental decoding (src/generate/kv-decoder.ts).
#include <string>
#include <vector>

#include "bindings.h"
#include "cpu/kv_attention.h"

namespace pt {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw OpError("kvAttention: " + msg); }

void need(const Tensor& t, const char* name, DType dt, const std::vector<int64_t>& shape) {
  if (t.dtype != dt || t.shape != shape) fail(std::string(name) + " " + t.describe() + " must be " + dtype_name(dt) + shape_str(shape));
}

bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.storage != b.storage || a.nbytes() == 0 || b.nbytes() == 0) return false;
  return a.byte_offset < b.byte_offset + b.nbytes() && b.byte_offset < a.byte_offset + a.nbytes();
}

// kvAttention(q, knew, vnew, kcache, vcache, segments i32 [nseg, 4] (slot, start, n, row), out, scale)
Napi::Value kv_attention_op(const Napi::CallbackInfo& info) {
  const char* op = "kvAttention";
  Tensor q = arg_tensor(info, 0, op, "q");
  Tensor kn = arg_tensor(info, 1, op, "knew");
  Tensor vn = arg_tensor(info, 2, op, "vnew");
  Tensor kc = arg_tensor(info, 3, op, "kcache");
  Tensor vc = arg_tensor(info, 4, op, "vcache");
  Tensor sg = arg_tensor(info, 5, op, "segments");
  Tensor out = arg_tensor(info, 6, op, "out");
  const double scale = arg_number(info, 7, op, "scale");
  if (q.dtype == DType::I32 || q.shape.size() != 3) fail("q " + q.describe() + " must be bf16 or f32 [rows, Hq, D]");
  const DType dt = q.dtype;
  const int64_t rows = q.shape[0], Hq = q.shape[1], D = q.shape[2];
  if (kc.shape.size() != 4) fail("kcache " + kc.describe() + " must be [slots, maxLen, Hkv, D]");
  const int64_t slots = kc.shape[0], maxLen = kc.shape[1], Hkv = kc.shape[2];
  if (kc.shape[3] != D) fail("kcache " + kc.describe() + " and q " + q.describe() + " differ in head dimension");
  if (Hkv < 1 || Hq % Hkv) fail("kv heads of kcache " + kc.describe() + " must divide the query heads of q " + q.describe());
  need(kc, "kcache", dt, kc.shape);
  need(vc, "vcache", dt, kc.shape);
  need(kn, "knew", dt, {rows, Hkv, D});
  need(vn, "vnew", dt, {rows, Hkv, D});
  need(out, "out", dt, q.shape);
  if (sg.dtype != DType::I32 || sg.shape.size() != 2 || sg.shape[1] != 4) fail("segments " + sg.describe() + " must be i32 [nseg, 4]");
  if (!(scale > 0)) fail("scale must be positive");
  const std::pair<const char*, const Tensor*> ins[] = {{"q", &q}, {"knew", &kn}, {"vnew", &vn}, {"segments", &sg}};
  const std::pair<const char*, const Tensor*> outs[] = {{"kcache", &kc}, {"vcache", &vc}, {"out", &out}};
  for (auto [on, o] : outs) {
    for (auto [in, x] : ins) if (overlaps(*o, *x)) fail(std::string(on) + " overlaps " + in);
  }
  if (overlaps(kc, vc) || overlaps(kc, out) || overlaps(vc, out)) fail("kcache, vcache and out must not overlap");
  const int64_t nseg = sg.shape[0];
  std::vector<KvSegment> segs(static_cast<size_t>(nseg));
  std::memcpy(segs.data(), sg.data(), size_t(nseg) * sizeof(KvSegment));
  std::vector<char> used(size_t(slots), 0), rowUsed(size_t(rows), 0);
  for (int64_t s = 0; s < nseg; s++) {
    const KvSegment& g = segs[size_t(s)];
    const std::string where = "segment " + std::to_string(s) + " (slot " + std::to_string(g.slot) + ", start " + std::to_string(g.start) +
                              ", n " + std::to_string(g.n) + ", row " + std::to_string(g.row) + ")";
    if (g.slot < 0 || g.slot >= slots) fail(where + ": slot outside 0.." + std::to_string(slots - 1));
    if (used[size_t(g.slot)]++) fail(where + ": slot appears twice");
    if (g.n < 1 || g.start < 0 || int64_t(g.start) + g.n > maxLen) fail(where + ": positions outside the cache's " + std::to_string(maxLen));
    if (g.row < 0 || int64_t(g.row) + g.n > rows) fail(where + ": rows outside q's " + std::to_string(rows));
    for (int32_t r = g.row; r < g.row + g.n; r++) {
      if (rowUsed[size_t(r)]++) fail(where + ": row " + std::to_string(r) + " belongs to two segments");
    }
  }
  kv_attention(dt, segs.data(), nseg, maxLen, Hq, Hkv, D, float(scale), q.data(), kn.data(), vn.data(), kc.data(), vc.data(), out.data());
  return info.Env().Undefined();
}

}  // namespace

void register_kv_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("kvAttention", Napi::Function::New(env, guarded<kv_attention_op>));
}

}  // namespace pt
