// The device switch's CUDA arm. PT_CUDA(op, expr) is `expr` where the addon links the CUDA backend
// (POLYTUNE_HAS_CUDA) and otherwise throws "<op>: this addon was built without CUDA": the one #ifdef
// outside native/cuda/, in the role of candle's dummy backend. The CMake compile-only mode compiles
// native/ops with POLYTUNE_HAS_CUDA defined, so the CUDA arms are type-checked against
// native/cuda/api.h on every machine with nvcc, even where nothing links them.
#pragma once
#include "cuda/api.h"
#include "device.h"
#include "tensor.h"

#ifdef POLYTUNE_HAS_CUDA
#define PT_CUDA(op, ...) __VA_ARGS__
#else
#define PT_CUDA(op, ...) throw OpError(not_built_with_cuda(op))
#endif

namespace pt::ops {

#ifdef POLYTUNE_HAS_CUDA
inline cuda::Context& ctx(const Tensor& t) { return cuda::context(t.device().index); }

// A small device buffer for the duration of one op (the per-call scalars of the host-returning ops).
struct DeviceScratch {
  cuda::Context& c;
  void* p;
  DeviceScratch(cuda::Context& c, size_t bytes, const char* what) : c(c), p(cuda::alloc(c, bytes, what)) {}
  ~DeviceScratch() {
    try {
      cuda::free(c, p);
    } catch (...) {
    }
  }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
};
#endif

}  // namespace pt::ops
