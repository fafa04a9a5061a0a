// Where a tensor's memory lives: a kind and, for CUDA, the ordinal. A closed set with a plain switch
// per op (native/ops/), not a virtual backend interface: two kinds and about twenty ops.
#pragma once
#include <string>

#include "common.h"

namespace pt {

struct Device {
  enum Kind : int { CPU = 0, CUDA = 1 };
  Kind kind = CPU;
  int index = 0;

  bool is_host() const { return kind == CPU; }
  bool operator==(const Device& o) const { return kind == o.kind && (kind == CPU || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
  // "cpu" or "cuda:N": the same spelling as Tensor.device in TS.
  std::string name() const { return kind == CPU ? std::string("cpu") : "cuda:" + std::to_string(index); }
};

inline constexpr Device kCpu{};

// True when this addon was compiled with the CUDA backend linked in.
constexpr bool cuda_built() {
#ifdef POLYTUNE_HAS_CUDA
  return true;
#else
  return false;
#endif
}

// The message of every CUDA request made of a CPU-only addon, so each reads the same.
inline std::string not_built_with_cuda(const std::string& what) {
  return what + ": this addon was built without CUDA; rebuild it on a machine with the CUDA toolkit and cuBLASLt (POLYTUNE_CUDA=ON) to use cuda devices";
}

// "cpu", "cuda" (= cuda:0) or "cuda:N"; anything else is an OpError naming `op`. A CUDA name on a
// CPU-only build, or an ordinal the machine does not have, is refused here, before any allocation.
Device parse_device(const std::string& s, const char* op);

}  // namespace pt
