// Token embedding lookup; backward scatter-adds rows of the gradient into the table.
#pragma once
#include "common.h"

namespace pt {
// out[n, :] = weight[ids[n], :]. ids are checked against V before any write.
void embedding_forward(DType dt, int64_t N, int64_t V, int64_t C, const int32_t* ids,
                       const void* weight, void* out);
// dweight[ids[n], :] += dout[n, :]. Rows sharing an id are summed in fp32 first, so a bf16 table
// is rounded once per call (micro-batch) rather than once per occurrence.
void embedding_backward(DType dt, int64_t N, int64_t V, int64_t C, const int32_t* ids,
                        const void* dout, void* dweight);
// Throws OpError naming `op` when an id is outside [0, V).
void check_ids(const char* op, int64_t N, int64_t V, const int32_t* ids);
}  // namespace pt
