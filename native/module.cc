// The addon's entry point: every native function JS can call, in one list. Ops are bound by the
// generic binder (bindings/bind.h) from their C++ signatures in native/ops/; the JS names and
// argument orders are those of src/tensor/native.ts.
#include <cmath>

#include "bindings.h"
#include "bindings/bind.h"
#include "cpu/pack_cache.h"
#include "cpu/peak.h"
#include "ops/adamw.h"
#include "ops/attention.h"
#include "ops/copy.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "cpu/gemm.h"
#include "ops/embedding.h"
#include "ops/kv_attention.h"
#include "ops/matmul.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"
#ifdef POLYTUNE_HAS_CUDA
#include "cuda/api.h"
#endif

namespace pt {
namespace {

Napi::Value memory_stats(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("liveBuffers", Napi::Number::New(info.Env(), double(MemoryStats::live_buffers.load())));
  o.Set("liveBytes", Napi::Number::New(info.Env(), double(MemoryStats::live_bytes.load())));
  const HostCacheStats c = host_cache_stats();
  o.Set("keptBuffers", Napi::Number::New(info.Env(), double(c.entries)));
  o.Set("keptBytes", Napi::Number::New(info.Env(), double(c.bytes)));
  o.Set("keptReuses", Napi::Number::New(info.Env(), double(c.hits)));
  o.Set("keptLimitBytes", Napi::Number::New(info.Env(), double(c.limit_bytes)));
  return o;
}

Napi::Value build_info(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("cuda", cuda_built());
  o.Set("threads", num_threads());
  const char* simd =
#if defined(__AVX512BF16__)
      "avx512bf16";
#elif defined(__AVX512F__)
      "avx512f";
#elif defined(__AVX2__)
      "avx2";
#else
      "generic";
#endif
  o.Set("simd", simd);
  o.Set("isa", isa_path());
  o.Set("amx", amx_usable());
  // The dtypes whose x·Wᵀ reads W in place (no packing of W, nothing cached for it).
  Napi::Array in_place = Napi::Array::New(info.Env());
  for (DType dt : {DType::F32, DType::BF16})
    if (gemm_xwt_in_place(dt)) in_place.Set(in_place.Length(), dtype_name(dt));
  o.Set("gemmXwtInPlace", in_place);
  return o;
}

// devices(): the devices this process can allocate on, "cpu" first. A CUDA build on a machine without
// a driver or a GPU lists only the CPU (and still runs CPU work).
Napi::Value devices(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  a.Set(uint32_t(0), "cpu");
#ifdef POLYTUNE_HAS_CUDA
  const int n = cuda::device_count();
  for (int i = 0; i < n; i++) a.Set(uint32_t(i + 1), Device{Device::CUDA, i}.name());
#endif
  return a;
}

Napi::Value pack_cache_stats_js(const Napi::CallbackInfo& info) {
  const PackCacheStats st = pack_cache_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("entries", double(st.entries));
  o.Set("bytes", double(st.bytes));
  o.Set("hits", double(st.hits));
  o.Set("fills", double(st.fills));
  o.Set("limitBytes", double(st.limit_bytes));
  o.Set("spares", double(st.spares));
  o.Set("spareBytes", double(st.spare_bytes));
  o.Set("reuses", double(st.reuses));
  return o;
}

// peakGflops(dtype, ms): the measured FMA (f32) or vdpbf16ps (bf16) peak, for benchmarks.
Napi::Value peak_gflops_js(const Napi::CallbackInfo& info) {
  const char* op = "peakGflops";
  if (info.Length() < 1 || !info[0].IsString()) throw OpError(std::string(op) + ": dtype must be 'f32' or 'bf16'");
  const std::string dt = info[0].As<Napi::String>().Utf8Value();
  if (dt != "f32" && dt != "bf16") throw OpError(std::string(op) + ": dtype must be 'f32' or 'bf16', not '" + dt + "'");
  const double ms = arg_number(info, 1, op, "ms");
  if (!(ms > 0 && ms <= 2000)) throw OpError(std::string(op) + ": ms must be in (0, 2000]");
  return Napi::Number::New(info.Env(), pt::peak_gflops(dt == "bf16", ms));
}

void fn(Napi::Env env, Napi::Object exports, const char* name, Napi::Value (*f)(const Napi::CallbackInfo&)) {
  exports.Set(name, Napi::Function::New(env, f, name));
}

}  // namespace

Napi::Object init_module(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeTensor", JsTensor::Init(env));
  fn(env, exports, "memoryStats", guarded<memory_stats>);
  fn(env, exports, "buildInfo", guarded<build_info>);
  fn(env, exports, "devices", guarded<devices>);
  fn(env, exports, "peakGflops", guarded<peak_gflops_js>);
  fn(env, exports, "packCacheStats", guarded<pack_cache_stats_js>);

  // The ops: JS name, then the names of the C++ parameters in order (used in argument errors).
  bind<&ops::copy>(env, exports, "copy", {"src", "dst"});
  bind<&ops::matmul>(env, exports, "matmul", {"a", "b", "out", "transA", "transB", "accumulate"});
  bind<&ops::embedding>(env, exports, "embedding", {"ids", "weight", "out"});
  bind<&ops::embedding_backward>(env, exports, "embeddingBackward", {"ids", "dout", "dweight"});
  bind<&ops::rmsnorm>(env, exports, "rmsnorm", {"x", "weight", "eps", "out", "rstd"});
  bind<&ops::rmsnorm_backward>(env, exports, "rmsnormBackward", {"x", "weight", "rstd", "dout", "dx", "dweight"});
  bind<&ops::rope>(env, exports, "rope", {"x", "positions", "cos", "sin", "out", "inverse"});
  bind<&ops::attention>(env, exports, "attention", {"q", "k", "v", "cu_seqlens", "out", "lse", "scale", "max_seqlen"});
  bind<&ops::attention_backward>(env, exports, "attentionBackward",
                                 {"q", "k", "v", "cu_seqlens", "out", "dout", "lse", "dq", "dk", "dv", "scale", "max_seqlen"});
  bind<&ops::kv_attention>(env, exports, "kvAttention", {"q", "knew", "vnew", "kcache", "vcache", "segments", "out", "scale"});
  bind<&ops::swiglu>(env, exports, "swiglu", {"gate", "up", "out"});
  bind<&ops::swiglu_backward>(env, exports, "swigluBackward", {"gate", "up", "dout", "dgate", "dup"});
  bind<&ops::add>(env, exports, "add", {"a", "b", "out"});
  bind<&ops::cast>(env, exports, "cast", {"src", "dst"});
  bind<&ops::fill>(env, exports, "fill", {"t", "value"});
  bind<&ops::scale>(env, exports, "scale", {"t", "s"});
  bind<&ops::sum_squares>(env, exports, "sumSquares", {"t"});
  bind<&ops::sum_squares_into>(env, exports, "sumSquaresInto", {"t", "out", "index"});
  bind<&ops::cross_entropy>(env, exports, "crossEntropy", {"logits", "targets", "ignoreIndex", "losses", "dlogits", "gradScale"});
  bind<&ops::adamw>(env, exports, "adamw", {"param", "grad", "master", "m", "v", "options"});

  register_dist(env, exports);
  return exports;
}

}  // namespace pt

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return pt::init_module(env, exports); }
NODE_API_MODULE(polytune_native, InitModule)
