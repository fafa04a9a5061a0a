// polytune_cuda_check --bench PATH: timings of our kernels at peers.py's shapes, as JSON in PATH.
#pragma once
#include "cuda/api.h"

namespace check {
int run_bench(pt::cuda::Context& c, const char* path);
}
