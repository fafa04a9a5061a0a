// `dist`: MPI collectives on CPU tensors for data-parallel training (native/mpi/). Without MPI at
// build time the object still exists and says so (built: false), and its collectives refuse to run.
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.h"
#ifdef POLYTUNE_HAS_MPI
#include "mpi/mpi_comm.h"
#endif

namespace pt {
namespace {

#ifdef POLYTUNE_HAS_MPI
std::vector<Tensor> arg_tensors(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (i >= info.Length() || !info[i].IsArray()) throw OpError(std::string(op) + ": argument 'tensors' must be an array of Tensors");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<Tensor> out;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!JsTensor::Is(v)) throw OpError(std::string(op) + ": tensors[" + std::to_string(k) + "] is not a Tensor");
    Tensor t = JsTensor::Unwrap(v.As<Napi::Object>())->t;
    if (!t.storage) throw OpError(std::string(op) + ": tensors[" + std::to_string(k) + "] has been disposed");
    if (!t.device().is_host()) throw OpError(std::string(op) + ": tensors[" + std::to_string(k) + "] is on " + t.device().name() + "; MPI collectives take cpu tensors");
    // Collectives write their tensors: a cached packing of one (a weight) must not outlive it.
    t.storage->mark_written();
    out.push_back(t);
  }
  return out;
}

std::string arg_label(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : std::string("collective");
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  const double timeout = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  dist::RankInfo me = dist::init(timeout);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("rank", me.rank);
  o.Set("size", me.size);
  o.Set("host", me.host);
  Napi::Array hosts = Napi::Array::New(info.Env(), dist::ranks().size());
  for (size_t r = 0; r < dist::ranks().size(); r++) hosts.Set(uint32_t(r), dist::ranks()[r].host);
  o.Set("hosts", hosts);
  return o;
}

// allreduceSum(tensors, extra: Float64Array | null, label) sums in place.
Napi::Value AllreduceSum(const Napi::CallbackInfo& info) {
  std::vector<Tensor> ts = arg_tensors(info, 0, "dist.allreduceSum");
  // Sums are taken in fp32: an i32 tensor would be read as pairs of bf16.
  for (size_t k = 0; k < ts.size(); k++)
    if (ts[k].dtype == DType::I32) throw OpError("dist.allreduceSum: tensors[" + std::to_string(k) + "] is i32; it sums f32 and bf16 tensors");
  std::vector<double> extra;
  Napi::Float64Array ex;
  if (info.Length() > 1 && info[1].IsTypedArray()) {
    // As<Float64Array> does not check the element type: a Float32Array would be overrun.
    if (info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) throw OpError("dist.allreduceSum: argument 'extra' must be a Float64Array");
    ex = info[1].As<Napi::Float64Array>();
    extra.assign(ex.Data(), ex.Data() + ex.ElementLength());
  }
  const double timeout = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : 0;
  dist::allreduce_sum(ts, extra, arg_label(info, 2), timeout);
  if (!extra.empty()) std::copy(extra.begin(), extra.end(), ex.Data());
  return info.Env().Undefined();
}

Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  std::vector<Tensor> ts = arg_tensors(info, 0, "dist.broadcast");
  const int root = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  dist::broadcast(ts, root, arg_label(info, 2));
  return info.Env().Undefined();
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  const double timeout = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  dist::barrier(arg_label(info, 0), timeout);
  return info.Env().Undefined();
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  const int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  dist::abort_job(code, arg_label(info, 1));
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  dist::finalize();
  return info.Env().Undefined();
}
#else
Napi::Value NotBuilt(const Napi::CallbackInfo& info) {
  throw Napi::Error::New(info.Env(), "this build of polytune has no MPI: install Open MPI (libopenmpi-dev) and rebuild the addon to run more than one process");
}
#endif

}  // namespace

void register_dist(Napi::Env env, Napi::Object exports) {
  Napi::Object d = Napi::Object::New(env);
#ifdef POLYTUNE_HAS_MPI
  d.Set("built", true);
  d.Set("library", dist::library_version());
  d.Set("init", Napi::Function::New(env, guarded<Init>));
  d.Set("allreduceSum", Napi::Function::New(env, guarded<AllreduceSum>));
  d.Set("broadcast", Napi::Function::New(env, guarded<Broadcast>));
  d.Set("barrier", Napi::Function::New(env, guarded<Barrier>));
  d.Set("abort", Napi::Function::New(env, guarded<Abort>));
  d.Set("finalize", Napi::Function::New(env, guarded<Finalize>));
#else
  d.Set("built", false);
  for (const char* f : {"init", "allreduceSum", "broadcast", "barrier", "abort", "finalize"}) d.Set(f, Napi::Function::New(env, NotBuilt));
#endif
  d.Set("nccl", false);
  exports.Set("dist", d);
}

}  // namespace pt
