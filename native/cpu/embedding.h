// Token embedding lookup; backward scatter-adds rows of the gradient into the table.
#pragma once
#include "common.h"

namespace pt {
// out[n, :] = weight[ids[n], :]. An id outside [0, V) is an OpError (out is then unspecified): the
// lookup skips it instead of reading past the table, with no separate pass over the ids first.
void embedding_forward(DType dt, int64_t N, int64_t V, int64_t C, const int32_t* ids,
                       const void* weight, void* out);
// dweight[ids[n], :] += dout[n, :]. Rows sharing an id are summed in fp32 first, so a bf16 table
// is rounded once per call (micro-batch) rather than once per occurrence. ids outside [0, V) are an
// OpError before any write (found from the sorted ids' ends).
void embedding_backward(DType dt, int64_t N, int64_t V, int64_t C, const int32_t* ids,
                        const void* dout, void* dweight);
// Throws OpError naming `op` when an id is outside [0, V).
void check_ids(const char* op, int64_t N, int64_t V, const int32_t* ids);
}  // namespace pt
