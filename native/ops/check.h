// The argument checks every op runs before its device switch, for both backends: messages name the
// op, the argument and the shapes, so a mistake reads the same from any caller on any device.
#pragma once
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "tensor.h"

namespace pt::ops {

// A tensor an op only reads. The binder reads it without bumping its storage's version, so data
// derived from it (the CPU GEMM's packed weights) stays valid; every other tensor argument counts as
// written. A missed `In` costs a cache miss, never a stale result.
struct In : Tensor {};

[[noreturn]] inline void fail(const char* op, const std::string& msg) { throw OpError(std::string(op) + ": " + msg); }

inline void need_float(const char* op, const char* name, const Tensor& t) {
  if (t.dtype == DType::I32) fail(op, std::string(name) + " " + t.describe() + " must be bf16 or f32");
}

inline void need_dtype(const char* op, const char* name, const Tensor& t, DType dt) {
  if (t.dtype != dt) fail(op, std::string(name) + " " + t.describe() + " must be " + dtype_name(dt));
}

inline void need_shape(const char* op, const char* name, const Tensor& t, const std::vector<int64_t>& shape) {
  if (t.shape != shape) fail(op, std::string(name) + " " + t.describe() + " must have shape " + shape_str(shape));
}

inline void need_ndim(const char* op, const char* name, const Tensor& t, size_t nd) {
  if (t.shape.size() != nd) fail(op, std::string(name) + " " + t.describe() + " must have " + std::to_string(nd) + " dimensions");
}

// Elementwise ops take any shapes with equal element counts: they act on flat buffers.
inline void need_same(const char* op, const Tensor& a, const char* an, const Tensor& b, const char* bn) {
  if (a.dtype != b.dtype || a.shape != b.shape) {
    fail(op, std::string(an) + " " + a.describe() + " and " + bn + " " + b.describe() + " must match in dtype and shape");
  }
}

inline bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.storage != b.storage || a.nbytes() == 0 || b.nbytes() == 0) return false;
  return a.byte_offset < b.byte_offset + b.nbytes() && b.byte_offset < a.byte_offset + a.nbytes();
}

// Kernels read inputs while they write outputs, in parallel: an output may share memory with an
// input only where the kernel is written for it, and then only as the very same tensor.
inline void no_overlap(const char* op, const char* on, const Tensor& out, const char* in, const Tensor& x, bool same_ok = false) {
  if (!overlaps(out, x)) return;
  if (same_ok && out.byte_offset == x.byte_offset && out.nbytes() == x.nbytes() && out.dtype == x.dtype) return;
  fail(op, std::string(on) + " " + out.describe() + " overlaps the memory of " + in + " " + x.describe() +
               (same_ok ? " (only the very same tensor may be passed as both)" : ""));
}

using Named = std::pair<const char*, const Tensor*>;

// Every tensor of one call lives on one device (the first one's); the op then switches on it. There
// are no implicit copies between devices: moving data is Tensor.to()'s job, visible in the caller.
inline Device same_device(const char* op, std::initializer_list<Named> ts) {
  const Named& first = *ts.begin();
  const Device d = first.second->device();
  for (const Named& t : ts) {
    if (t.second->device() != d) {
      fail(op, std::string(t.first) + " " + t.second->describe() + " is on " + t.second->device().name() + " but " + first.first + " " +
                   first.second->describe() + " is on " + d.name() + " (an op's tensors must share one device; move them with Tensor.to())");
    }
  }
  return d;
}

}  // namespace pt::ops
