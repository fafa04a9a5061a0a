// embedding: out[i] = weight[ids[i]]; backward accumulates dout rows into dweight. Contract:
// native/cpu/embedding.h (ids outside the table are an error; the backward is deterministic).
#pragma once
#include "ops/check.h"

namespace pt::ops {
void embedding(const In& ids, const In& weight, const Tensor& out);
void embedding_backward(const In& ids, const In& dout, const Tensor& dweight);
}
