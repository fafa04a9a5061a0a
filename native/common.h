// Shared by every CPU op: dtypes, bf16 rounding, the thread split, and argument errors.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pt {

enum class DType : int { BF16 = 0, F32 = 1, I32 = 2 };

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::BF16: return "bf16";
    case DType::F32: return "f32";
    case DType::I32: return "i32";
  }
  return "?";
}

inline size_t dtype_size(DType d) { return d == DType::BF16 ? 2 : 4; }

// Thrown for any bad argument; the bindings turn it into a JS Error, so no input aborts Node.
struct OpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using bf16 = uint16_t;

inline float bf16_to_f32(bf16 h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, as CUDA's __float2bfloat16 does, so both backends round alike.
inline bf16 f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16(u >> 16);
}

// Loads/stores that let one templated kernel serve the bf16 and f32 paths.
inline float load(const float* p, int64_t i) { return p[i]; }
inline float load(const bf16* p, int64_t i) { return bf16_to_f32(p[i]); }
inline void store(float* p, int64_t i, float v) { p[i] = v; }
inline void store(bf16* p, int64_t i, float v) { p[i] = f32_to_bf16(v); }

// Below this many elements of work an op runs on the calling thread: waking the OpenMP team
// costs more than the work, and on a loaded machine a spinning team can stall a tiny op for
// milliseconds.
constexpr int64_t kParallelMin = 1 << 15;

inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// This thread's index in the current team (0 outside a parallel region or without OpenMP): picks
// its slice of scratch allocated before the region.
inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace pt
