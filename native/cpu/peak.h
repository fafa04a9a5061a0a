// The machine's measured arithmetic peak, for benchmarks to report kernels as a fraction of it.
#pragma once
#include "common.h"

namespace pt {
// GFLOP/s of independent FMA chains on every OpenMP thread for about `ms` milliseconds:
// "f32" counts vfmadd (2 flops per lane), "bf16" counts vdpbf16ps (4 flops per fp32 lane).
// Returns 0 when the build has no such instruction.
double peak_gflops(bool bf16, double ms);
// The ISA path the kernels were compiled for, and whether AMX tiles are usable at run time.
const char* isa_path();
bool amx_usable();
}  // namespace pt
