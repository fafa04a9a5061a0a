#include "kv_attention.h"

#include <cstring>
#include <exception>
#include <vector>

#include "attention.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pt {

void kv_attention(DType dt, const KvSegment* segs, int64_t nseg, int64_t maxLen, int64_t Hq, int64_t Hkv,
                  int64_t D, float scale, const void* q, const void* knew, const void* vnew, void* kcache,
                  void* vcache, void* out) {
  const int64_t esz = dt == DType::BF16 ? 2 : 4;
  const int64_t kvRow = Hkv * D * esz, qRow = Hq * D * esz, slotBytes = maxLen * kvRow;
  auto* kc = static_cast<char*>(kcache);
  auto* vc = static_cast<char*>(vcache);
  for (int64_t s = 0; s < nseg; s++) {
    const KvSegment& g = segs[s];
    const int64_t at = g.slot * slotBytes + int64_t(g.start) * kvRow, bytes = int64_t(g.n) * kvRow;
    std::memcpy(kc + at, static_cast<const char*>(knew) + int64_t(g.row) * kvRow, size_t(bytes));
    std::memcpy(vc + at, static_cast<const char*>(vnew) + int64_t(g.row) * kvRow, size_t(bytes));
  }
  // One sequence: attention_forward spreads its heads and query blocks over the threads itself.
  // Several: one sequence per thread (the inner call then runs on its caller's thread).
  std::exception_ptr err;
#pragma omp parallel for schedule(dynamic) if (nseg > 1)
  for (int64_t s = 0; s < nseg; s++) {
    try {
      const KvSegment& g = segs[s];
      const int64_t L = int64_t(g.start) + g.n;
      std::vector<float> lse(size_t(Hq * g.n));
      attention_forward(dt, 1, g.n, L, Hq, Hkv, D, scale, static_cast<const char*>(q) + int64_t(g.row) * qRow,
                        kc + g.slot * slotBytes, vc + g.slot * slotBytes, nullptr, 0,
                        static_cast<char*>(out) + int64_t(g.row) * qRow, lse.data());
    } catch (...) {
#pragma omp critical
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace pt
