// N-API glue shared by the tensor class and the op bindings.
#pragma once
#include <napi.h>

#include <optional>
#include <vector>

#include "cuda/errors.h"
#include "tensor.h"

namespace pt {

class JsTensor : public Napi::ObjectWrap<JsTensor> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, Tensor t);
  static bool Is(const Napi::Value& v);
  explicit JsTensor(const Napi::CallbackInfo& info);
  Tensor t;

 private:
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value DeviceName(const Napi::CallbackInfo& info);
  Napi::Value EndBytesViews(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value ReadBytes(const Napi::CallbackInfo& info);
  Napi::Value BytesView(const Napi::CallbackInfo& info);
  Napi::Value WriteBytes(const Napi::CallbackInfo& info);
  Napi::Value SameStorage(const Napi::CallbackInfo& info);

  struct ViewToken;
  struct LiveView {
    std::shared_ptr<ViewToken> token;
    Napi::Reference<Napi::ArrayBuffer> buffer;  // weak: the Buffer's lifetime is JS's
  };
  std::vector<LiveView> views_;  // live bytesViews made through this handle
};

// A JS Error with a `code` a caller can branch on (ERR_POLYTUNE_ARG: a bad argument; ERR_POLYTUNE_OOM:
// device memory, with the sizes as fields; ERR_POLYTUNE_CUDA: a CUDA fault, `sticky` when the device
// is lost), so the trainer can tell "shrink the batch" from "fix the call" from "restart".
inline Napi::Error coded_error(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", code);
  return e;
}

// Runs an op body, turning every C++ failure into a JS Error: no input from JS may abort Node.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const OpError& e) {
    throw coded_error(info.Env(), "ERR_POLYTUNE_ARG", e.what());
#ifdef POLYTUNE_HAS_CUDA
  } catch (const cuda::OutOfMemory& e) {
    Napi::Error x = coded_error(info.Env(), "ERR_POLYTUNE_OOM", e.what());
    x.Set("device", "cuda:" + std::to_string(e.device));
    x.Set("requestedBytes", double(e.requested));
    x.Set("inUseBytes", double(e.in_use));
    x.Set("reservedBytes", double(e.reserved));
    x.Set("totalBytes", double(e.total));
    throw x;
  } catch (const cuda::CudaError& e) {
    Napi::Error x = coded_error(info.Env(), "ERR_POLYTUNE_CUDA", e.what());
    x.Set("api", e.api);
    x.Set("cudaCode", e.code);
    x.Set("sticky", e.sticky);
    throw x;
#endif
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

// Argument readers; each throws OpError naming the op and the argument. Tensors come back by
// value: the copy holds the storage, so JS that runs during the call (a getter, a Proxy) cannot
// free memory an op is about to touch by disposing the tensor.
// Marks the tensor's storage as written (see Storage::version).
Tensor arg_tensor(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
// A tensor the op only reads: its version is left alone, so derived data cached for it stays valid.
Tensor arg_input(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
std::optional<Tensor> arg_tensor_or_null(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
double arg_number(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name);
DType parse_dtype(const std::string& s, const char* op);

// MPI collectives for data parallel (binding_dist.cc).
void register_dist(Napi::Env env, Napi::Object exports);

}  // namespace pt
