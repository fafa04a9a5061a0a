// Shared by every kernel file: bf16/f32 loads and stores with the CPU's rounding, the dtype switch,
// grid sizing and block reductions with a fixed order (determinism).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>

#include "cuda/context.h"

namespace pt::cuda {

using bf16_t = __nv_bfloat16;

// Loads widen to fp32; stores round to nearest even (__float2bfloat16_rn), as the CPU's f32_to_bf16.
__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16_t* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(bf16_t* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
// x rounded to T and back: where the CPU rounds an intermediate to the working dtype.
__device__ __forceinline__ float round_to(float x, const float*) { return x; }
__device__ __forceinline__ float round_to(float x, const bf16_t*) {
  return __bfloat162float(__float2bfloat16_rn(x));
}

// Calls body with T = float or bf16_t for a floating DType (the op layer has checked it).
#define PT_DISPATCH_FLOAT(dt, T, ...)     \
  do {                                    \
    if ((dt) == ::pt::DType::BF16) {      \
      using T = ::pt::cuda::bf16_t;       \
      __VA_ARGS__;                        \
    } else {                              \
      using T = float;                    \
      __VA_ARGS__;                        \
    }                                     \
  } while (0)

// Grid-stride elementwise loops: enough blocks to fill the GPU, capped so the grid stays in range.
inline unsigned grid_for(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  if (b > 65535LL * 8) b = 65535LL * 8;
  return unsigned(b < 1 ? 1 : b);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread. The order
// is fixed by the thread layout, so the result is the same on every run. `scratch` holds 32 values.
template <typename F>
__device__ __forceinline__ F block_sum(F v, F* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nw ? scratch[lane] : F(0);
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nw ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

}  // namespace pt::cuda
