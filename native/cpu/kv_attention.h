// Attention for incremental decoding over a preallocated KV cache: several sequences ("slots"),
// each with its own cached length, in one call. Each segment appends its new keys and values to
// its slot's cache rows and attends causally over everything that slot now holds.
#pragma once
#include "common.h"

namespace pt {
// A segment: n new tokens of cache slot `slot`, at positions [start, start + n), whose rows in the
// q / knew / vnew / out buffers are [row, row + n).
struct KvSegment {
  int32_t slot, start, n, row;
};

// q, out: [rows, Hq, D]; knew, vnew: [rows, Hkv, D] (keys already rotated); kcache, vcache:
// [slots, maxLen, Hkv, D]. Copies each segment's knew/vnew rows into the caches, then computes
// out rows = softmax(q·Kᵀ·scale)·V over the slot's keys [0, start + n), causal within the segment
// (query i sees keys <= start + i). Segments must name distinct slots and fit (checked by the
// caller). q, knew, vnew, caches and out share one dtype; math in fp32 as attention_forward.
void kv_attention(DType dt, const KvSegment* segs, int64_t nseg, int64_t maxLen, int64_t Hq, int64_t Hkv,
                  int64_t D, float scale, const void* q, const void* knew, const void* vnew, void* kcache,
                  void* vcache, void* out);
}  // namespace pt
