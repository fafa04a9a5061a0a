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

std::vector<long> arg_counts(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (i >= info.Length() || !info[i].IsArray()) throw OpError(std::string(op) + ": argument 'counts' must be an array of element counts, one per rank");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<long> out;
  for (uint32_t k = 0; k < a.Length(); k++) {
    const double c = a.Get(k).ToNumber().DoubleValue();
    if (!(c >= 0) || c != double(long(c))) throw OpError(std::string(op) + ": counts[" + std::to_string(k) + "] is not a non-negative integer");
    out.push_back(long(c));
  }
  return out;
}

Tensor one_tensor(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (i >= info.Length() || !JsTensor::Is(info[i])) throw OpError(std::string(op) + ": argument " + std::to_string(i) + " must be a Tensor");
  Tensor t = JsTensor::Unwrap(info[i].As<Napi::Object>())->t;
  if (!t.storage) throw OpError(std::string(op) + ": a tensor has been disposed");
  if (!t.device().is_host()) throw OpError(std::string(op) + ": the tensor is on " + t.device().name() + "; MPI collectives take cpu tensors");
  if (t.dtype == DType::I32) throw OpError(std::string(op) + ": takes f32 and bf16 tensors");
  t.storage->mark_written();
  return t;
}

// reduceScatterSum(full, counts, label): this rank's range of `full` ends up holding the sum.
Napi::Value ReduceScatterSum(const Napi::CallbackInfo& info) {
  Tensor t = one_tensor(info, 0, "dist.reduceScatterSum");
  dist::reduce_scatter_sum(t, arg_counts(info, 1, "dist.reduceScatterSum"), arg_label(info, 2));
  return info.Env().Undefined();
}

// allgather(full, counts, label): every rank's range copied to all, in place.
Napi::Value Allgather(const Napi::CallbackInfo& info) {
  Tensor t = one_tensor(info, 0, "dist.allgather");
  dist::allgather(t, arg_counts(info, 1, "dist.allgather"), arg_label(info, 2));
  return info.Env().Undefined();
}

// gather(shard, full | null, counts, root, label, timeout): the shards into root's full tensor.
Napi::Value Gather(const Napi::CallbackInfo& info) {
  Tensor shard = one_tensor(info, 0, "dist.gather");
  Tensor full;
  const bool has_full = info.Length() > 1 && JsTensor::Is(info[1]);
  if (has_full) full = one_tensor(info, 1, "dist.gather");
  const int root = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 0;
  const double timeout = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().DoubleValue() : 0;
  dist::gather(shard, has_full ? &full : nullptr, arg_counts(info, 2, "dist.gather"), root, arg_label(info, 4), timeout);
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
  d.Set("reduceScatterSum", Napi::Function::New(env, guarded<ReduceScatterSum>));
  d.Set("allgather", Napi::Function::New(env, guarded<Allgather>));
  d.Set("gather", Napi::Function::New(env, guarded<Gather>));
  d.Set("barrier", Napi::Function::New(env, guarded<Barrier>));
  d.Set("abort", Napi::Function::New(env, guarded<Abort>));
  d.Set("finalize", Napi::Function::New(env, guarded<Finalize>));
#else
  d.Set("built", false);
  for (const char* f : {"init", "allreduceSum", "broadcast", "reduceScatterSum", "allgather", "gather", "barrier", "abort", "finalize"}) d.Set(f, Napi::Function::New(env, NotBuilt));
#endif
  d.Set("nccl", false);
  exports.Set("dist", d);
}

}  // namespace pt
