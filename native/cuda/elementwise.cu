// Residual add, dtype casts and in-place scaling: memory-bound one-pass kernels, one rounding each,
// matching native/cpu/elementwise.cc element for element (bit-exact, not only within tolerance).
#include "cuda/common.cuh"

namespace pt::cuda {

template <typename T>
__global__ void add_kernel(int64_t n, const T* a, const T* b, T* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    st(out, i, ld(a, i) + ld(b, i));
}

template <typename S, typename D>
__global__ void cast_kernel(int64_t n, const S* src, D* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    st(dst, i, ld(src, i));
}

template <typename T>
__global__ void scale_kernel(int64_t n, float s, T* x) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    st(x, i, ld(x, i) * s);
}

template <typename T>
__global__ void fill_kernel(int64_t n, T v, T* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = v;
}

void add(Context& ctx, DType dt, int64_t n, const void* a, const void* b, void* out) {
  enter(ctx, "add");
  if (n == 0) return;
  PT_DISPATCH_FLOAT(dt, T, add_kernel<T><<<grid_for(n), 256, 0, ctx.stream>>>(n, (const T*)a, (const T*)b, (T*)out));
  PT_LAUNCH_CHECK(ctx, "add");
}

void cast(Context& ctx, DType src_dt, DType dst_dt, int64_t n, const void* src, void* dst) {
  enter(ctx, "cast");
  if (n == 0) return;
  if (src_dt == dst_dt) {
    PT_CUDA_CHECK_CTX(ctx, cudaMemcpyAsync(dst, src, size_t(n) * dtype_size(src_dt), cudaMemcpyDeviceToDevice, ctx.stream));
    return;
  }
  if (src_dt == DType::BF16 && dst_dt == DType::F32) {
    cast_kernel<<<grid_for(n), 256, 0, ctx.stream>>>(n, (const bf16_t*)src, (float*)dst);
  } else if (src_dt == DType::F32 && dst_dt == DType::BF16) {
    cast_kernel<<<grid_for(n), 256, 0, ctx.stream>>>(n, (const float*)src, (bf16_t*)dst);
  } else {
    throw OpError(std::string("cast: unsupported ") + dtype_name(src_dt) + " -> " + dtype_name(dst_dt));
  }
  PT_LAUNCH_CHECK(ctx, "cast");
}

void scale(Context& ctx, DType dt, int64_t n, float s, void* x) {
  enter(ctx, "scale");
  if (n == 0) return;
  PT_DISPATCH_FLOAT(dt, T, scale_kernel<T><<<grid_for(n), 256, 0, ctx.stream>>>(n, s, (T*)x));
  PT_LAUNCH_CHECK(ctx, "scale");
}

// The value is converted on the host exactly as the CPU's fill converts it (int32_t(value), float(value),
// f32_to_bf16), so both backends write the same bits.
void fill(Context& ctx, DType dt, int64_t n, double value, void* dst) {
  enter(ctx, "fill");
  if (n == 0) return;
  if (dt == DType::I32) {
    fill_kernel<<<grid_for(n), 256, 0, ctx.stream>>>(n, int32_t(value), (int32_t*)dst);
  } else if (dt == DType::F32) {
    fill_kernel<<<grid_for(n), 256, 0, ctx.stream>>>(n, float(value), (float*)dst);
  } else {
    fill_kernel<<<grid_for(n), 256, 0, ctx.stream>>>(n, f32_to_bf16(float(value)), (uint16_t*)dst);
  }
  PT_LAUNCH_CHECK(ctx, "fill");
}

}  // namespace pt::cuda
