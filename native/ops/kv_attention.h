// kvAttention: appends each segment's new keys/values to a per-slot cache and attends each new query
// over its slot's cache (incremental decoding, src/generate/kv-decoder.ts). Contract:
// native/cpu/kv_attention.h. segments: i32 [nseg, 4] (slot, start, n, row), validated on the host.
#pragma once
#include "ops/check.h"

namespace pt::ops {
void kv_attention(const In& q, const In& knew, const In& vnew, const Tensor& kcache, const Tensor& vcache, const In& segments,
                  const Tensor& out, double scale);
}
