#include <algorithm>
#include <cmath>
#include <cstdio>

#include "bindings.h"
#include "ops/copy.h"

namespace pt {

// The constructor lives in the environment's instance data, not in a static: each worker thread
// that loads the addon has its own.
static Napi::FunctionReference& ctor(Napi::Env env) { return *env.GetInstanceData<Napi::FunctionReference>(); }

Napi::Function JsTensor::Init(Napi::Env env) {
  Napi::Function f = DefineClass(
      env, "NativeTensor",
      {InstanceAccessor<&JsTensor::Dtype>("dtype"), InstanceAccessor<&JsTensor::Shape>("shape"),
       InstanceAccessor<&JsTensor::DeviceName>("device"), InstanceMethod<&JsTensor::EndBytesViews>("endBytesViews"),
       InstanceAccessor<&JsTensor::Disposed>("disposed"), InstanceMethod<&JsTensor::Dispose>("dispose"),
       InstanceMethod<&JsTensor::View>("view"), InstanceMethod<&JsTensor::ReadBytes>("readBytes"),
       InstanceMethod<&JsTensor::BytesView>("bytesView"),
       InstanceMethod<&JsTensor::WriteBytes>("writeBytes"),
       InstanceMethod<&JsTensor::SameStorage>("sameStorage")});
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(f)));
  return f;
}

DType parse_dtype(const std::string& s, const char* op) {
  if (s == "bf16") return DType::BF16;
  if (s == "f32") return DType::F32;
  if (s == "i32") return DType::I32;
  throw OpError(std::string(op) + ": unknown dtype '" + s + "' (expected bf16, f32 or i32)");
}

static std::vector<int64_t> parse_shape(const Napi::Value& v, const char* op) {
  if (!v.IsArray()) throw OpError(std::string(op) + ": shape must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> shape;
  // Zero dimensions are left out of the product, so [0, 9e15] cannot smuggle a huge row size past
  // the cap into a kernel's scratch allocation.
  double total = 1;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != std::floor(d) || d > 9.0e15) {
      throw OpError(std::string(op) + ": shape entry " + std::to_string(i) + " is not a non-negative integer");
    }
    shape.push_back(int64_t(d));
    if (d > 0) total *= d;
  }
  if (total > 1.0e15) throw OpError(std::string(op) + ": shape " + shape_str(shape) + " is too large");
  return shape;
}

// new NativeTensor(shape, dtype, device = 'cpu'): a fresh, uninitialised buffer on that device. Only
// the factory in JS calls it.
JsTensor::JsTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsTensor>(info) {
  if (info.Length() == 0) return;  // filled in by Wrap()
  try {
    if (!info[1].IsString()) throw OpError("empty: dtype must be a string");
    t.dtype = parse_dtype(info[1].As<Napi::String>().Utf8Value(), "empty");
    t.shape = parse_shape(info[0], "empty");
    Device dev = kCpu;
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      if (!info[2].IsString()) throw OpError("empty: device must be a string such as 'cpu' or 'cuda:0'");
      dev = parse_device(info[2].As<Napi::String>().Utf8Value(), "empty");
    }
    t.storage = std::make_shared<Storage>(t.nbytes(), dev);
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "empty: out of memory allocating " + t.describe());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Object JsTensor::Wrap(Napi::Env env, Tensor t) {
  Napi::Object o = ctor(env).New({});
  Unwrap(o)->t = std::move(t);
  return o;
}

bool JsTensor::Is(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(ctor(v.Env()).Value());
}

Napi::Value JsTensor::Dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtype_name(t.dtype));
}

Napi::Value JsTensor::Shape(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env(), t.shape.size());
  for (size_t i = 0; i < t.shape.size(); i++) a.Set(uint32_t(i), Napi::Number::New(info.Env(), double(t.shape[i])));
  return a;
}

Napi::Value JsTensor::DeviceName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), t.device().name());
}

Napi::Value JsTensor::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !t.storage);
}

Napi::Value JsTensor::Dispose(const Napi::CallbackInfo& info) {
  t.storage.reset();
  return info.Env().Undefined();
}

Napi::Value JsTensor::View(const Napi::CallbackInfo& info) {
  try {
    if (!t.storage) throw OpError("view: tensor " + t.describe() + " has been disposed");
    Tensor v = t;
    v.shape = parse_shape(info[0], "view");
    const double off = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
    if (!(off >= 0) || off != std::floor(off)) throw OpError("view: offset must be a non-negative integer");
    // Compared as doubles (numel is capped at 1e15, so exact): no integer conversion can wrap first.
    if (off + double(v.numel()) > double(t.numel())) {
      throw OpError("view: " + std::string(dtype_name(v.dtype)) + shape_str(v.shape) + " at offset " +
                    std::to_string(int64_t(off)) + " does not fit in " + t.describe());
    }
    v.byte_offset += size_t(off) * dtype_size(t.dtype);
    return Wrap(info.Env(), std::move(v));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

// A JS number for an error message: converting NaN, an infinity or a huge value to int64_t is
// undefined behaviour, and truncating 1.5 to 1 would misreport what the caller passed.
static std::string num_str(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return std::to_string(int64_t(d));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

static void check_range(const Tensor& t, double off, double len, const char* op) {
  if (!t.storage) throw OpError(std::string(op) + ": tensor " + t.describe() + " has been disposed");
  if (!(off >= 0) || !(len >= 0) || off != std::floor(off) || len != std::floor(len) ||
      off + len > double(t.nbytes())) {
    throw OpError(std::string(op) + ": byte range [" + num_str(off) + ", +" + num_str(len) + ") is outside " + t.describe() + " (" +
                  std::to_string(t.nbytes()) + " bytes)");
  }
}

Napi::Value JsTensor::ReadBytes(const Napi::CallbackInfo& info) {
  try {
    const double off = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    const double len = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : double(t.nbytes()) - off;
    check_range(t, off, len, "readBytes");
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(info.Env(), size_t(len));
    ops::read_bytes(t, size_t(off), out.Data(), size_t(len));
    return out;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

// bytesView(off, len): a Buffer over the tensor's own memory, no copy; host tensors only. The
// finalizer owns a reference to the storage, so the memory outlives dispose() for as long as the
// Buffer lives. Node marks such external buffers untransferable, so the memory cannot move to
// another thread.
//
// While the Buffer is live JS may write the memory behind the ops' backs, so the storage counts as
// exposed and nothing derived from it (packed GEMM weights) is cached. The exposure ends when
// endBytesViews() detaches the Buffers made through this handle (JS then sees them empty, so no
// later write can reach the memory) or when the garbage collector frees them; either way the
// version is bumped once, since JS may have written, and caching resumes.
struct JsTensor::ViewToken {
  std::shared_ptr<Storage> storage;
  std::atomic<bool> ended{false};
  void end() {
    if (ended.exchange(true)) return;
    storage->mark_written();
    storage->exposed_views.fetch_sub(1, std::memory_order_release);
  }
};

Napi::Value JsTensor::BytesView(const Napi::CallbackInfo& info) {
  try {
    const double off = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    const double len = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : double(t.nbytes()) - off;
    check_range(t, off, len, "bytesView");
    if (!t.device().is_host()) {
      throw OpError("bytesView: tensor " + t.describe() + " is on " + t.device().name() + ", not in host memory (use readBytes)");
    }
    if (len == 0) return Napi::Buffer<uint8_t>::New(info.Env(), 0);
    uint8_t* data = static_cast<uint8_t*>(t.data()) + size_t(off);
    auto token = std::make_shared<ViewToken>();
    token->storage = t.storage;
    t.storage->exposed_views.fetch_add(1, std::memory_order_acq_rel);  // before JS can touch the memory
    t.storage->mark_written();
    // The lambda's copy of the token is the reference to the storage; node-addon-api destroys the
    // lambda after the finalizer runs, or at once if the buffer cannot be made, so it never leaks.
    // Where a runtime forbids external buffers, NewOrCopy copies instead: nothing is exposed then.
    Napi::Buffer<uint8_t> buf;
    try {
      buf = Napi::Buffer<uint8_t>::NewOrCopy(info.Env(), data, size_t(len), [token](Napi::Env, uint8_t*) { token->end(); });
    } catch (...) {
      token->end();
      throw;
    }
    if (buf.Data() != data) {
      token->end();
      return buf;
    }
    views_.erase(std::remove_if(views_.begin(), views_.end(), [](const LiveView& v) { return v.token->ended.load(); }), views_.end());
    views_.push_back(LiveView{token, Napi::Weak(buf.ArrayBuffer())});
    return buf;
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

// Ends every bytesView made through this handle: each Buffer is detached (zero length from now on)
// and the storage's exposure ends, so the packed-weight cache works for it again.
Napi::Value JsTensor::EndBytesViews(const Napi::CallbackInfo& info) {
  for (LiveView& v : views_) {
    if (!v.token->ended.load()) {
      Napi::ArrayBuffer ab = v.buffer.Value();
      if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
      v.token->end();
    }
  }
  views_.clear();
  return info.Env().Undefined();
}

Napi::Value JsTensor::WriteBytes(const Napi::CallbackInfo& info) {
  try {
    if (!info[1].IsTypedArray()) throw OpError("writeBytes: data must be a typed array");
    Napi::TypedArray a = info[1].As<Napi::TypedArray>();
    const double off = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    const size_t len = a.ByteLength();
    check_range(t, off, double(len), "writeBytes");
    const uint8_t* src = static_cast<const uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    t.storage->mark_written();
    ops::write_bytes(t, size_t(off), src, len);
    return info.Env().Undefined();
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Value JsTensor::SameStorage(const Napi::CallbackInfo& info) {
  bool same = JsTensor::Is(info[0]) && Unwrap(info[0].As<Napi::Object>())->t.storage == t.storage && t.storage;
  return Napi::Boolean::New(info.Env(), same);
}

Tensor arg_tensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (i >= info.Length() || !JsTensor::Is(info[i])) {
    throw OpError(std::string(op) + ": argument '" + name + "' must be a Tensor");
  }
  Tensor t = JsTensor::Unwrap(info[i].As<Napi::Object>())->t;
  if (!t.storage) throw OpError(std::string(op) + ": argument '" + name + "' (" + t.describe() + ") has been disposed");
  // Any op may write any tensor argument unless it reads it through arg_input: a missed read-only
  // mark costs a cache miss, never a stale result.
  t.storage->mark_written();
  return t;
}

Tensor arg_input(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (i >= info.Length() || !JsTensor::Is(info[i])) {
    throw OpError(std::string(op) + ": argument '" + name + "' must be a Tensor");
  }
  Tensor t = JsTensor::Unwrap(info[i].As<Napi::Object>())->t;
  if (!t.storage) throw OpError(std::string(op) + ": argument '" + name + "' (" + t.describe() + ") has been disposed");
  return t;
}

std::optional<Tensor> arg_tensor_or_null(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return std::nullopt;
  return arg_tensor(info, i, op, name);
}

double arg_number(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    throw OpError(std::string(op) + ": argument '" + name + "' must be a number");
  }
  return info[i].As<Napi::Number>().DoubleValue();
}

bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  if (i >= info.Length() || !info[i].IsBoolean()) {
    throw OpError(std::string(op) + ": argument '" + name + "' must be a boolean");
  }
  return info[i].As<Napi::Boolean>().Value();
}

}  // namespace pt

