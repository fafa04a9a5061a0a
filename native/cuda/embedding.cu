// Token embedding, as native/cpu/embedding.cc. Forward copies rows. Backward is deterministic without
// float atomics: a stable radix sort of (id, position) groups the positions of each id in position
// order; one block per group then adds the group's gradient rows to the table row in fp32, in that
// order, and rounds once, exactly the CPU's order, so f32 results match it bit for bit.
// Ids outside [0, V) (the host validates batches, so only a bug gets here) are clamped and reported
// through the status word instead of a device assert, which would poison the context.
#include <cub/device/device_radix_sort.cuh>

#include "cuda/common.cuh"

namespace pt::cuda {

__device__ __forceinline__ int32_t clamp_id(int32_t id, int64_t V, uint32_t* status) {
  if (id < 0 || id >= V) {
    atomicOr(status, uint32_t(kBadTokenId));
    return id < 0 ? 0 : int32_t(V - 1);
  }
  return id;
}

template <typename T>
__global__ void embed_fwd(int64_t N, int64_t V, int64_t C, const int32_t* ids, const T* w, T* out, uint32_t* status) {
  const int64_t n = blockIdx.x;
  const int64_t id = clamp_id(ids[n], V, status);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) out[n * C + c] = w[id * C + c];
}

__global__ void embed_keys(int64_t N, int64_t V, const int32_t* ids, int32_t* keys, int32_t* order, uint32_t* status) {
  for (int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; n < N; n += int64_t(gridDim.x) * blockDim.x) {
    keys[n] = clamp_id(ids[n], V, status);
    order[n] = int32_t(n);
  }
}

// Block i owns the group that starts at sorted index i (other blocks return at once).
template <typename T>
__global__ void embed_bwd(int64_t N, int64_t C, const int32_t* sorted_ids, const int32_t* order, const T* dout, T* dw) {
  const int64_t i = blockIdx.x;
  const int32_t id = sorted_ids[i];
  if (i > 0 && sorted_ids[i - 1] == id) return;
  int64_t end = i + 1;
  while (end < N && sorted_ids[end] == id) end++;
  T* row = dw + int64_t(id) * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = ld(row, c);
    for (int64_t k = i; k < end; k++) acc += ld(dout + int64_t(order[k]) * C, c);
    st(row, c, acc);
  }
}

void embedding_forward(Context& ctx, DType dt, int64_t N, int64_t V, int64_t C, const int32_t* ids,
                       const void* weight, void* out) {
  enter(ctx, "embedding");
  if (N == 0 || C == 0) return;
  PT_DISPATCH_FLOAT(dt, T, embed_fwd<T><<<unsigned(N), 256, 0, ctx.stream>>>(
      N, V, C, ids, (const T*)weight, (T*)out, ctx.status));
  PT_LAUNCH_CHECK(ctx, "embedding");
}

void embedding_backward(Context& ctx, DType dt, int64_t N, int64_t V, int64_t C, const int32_t* ids,
                        const void* dout, void* dweight) {
  enter(ctx, "embedding_backward");
  if (N == 0 || C == 0) return;
  if (N > INT32_MAX) throw OpError("embedding_backward: more than 2^31 - 1 positions");
  // keys, order, sorted keys, sorted order: four int32 arrays in one allocation.
  int32_t* buf = (int32_t*)alloc(ctx, size_t(N) * 4 * sizeof(int32_t), "embedding_backward sort");
  int32_t *keys = buf, *order = buf + N, *skeys = buf + 2 * N, *sorder = buf + 3 * N;
  embed_keys<<<grid_for(N), 256, 0, ctx.stream>>>(N, V, ids, keys, order, ctx.status);
  PT_LAUNCH_CHECK(ctx, "embedding_backward");
  // Only the bits that can be set: a 32k vocabulary sorts in 15 bits instead of 32.
  int end_bit = 1;
  while (end_bit < 31 && (int64_t(1) << end_bit) < V) end_bit++;
  size_t temp_bytes = 0;
  PT_CUDA_CHECK_CTX(ctx, cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, skeys, order, sorder,
                                                         int(N), 0, end_bit, ctx.stream));
  void* temp = alloc(ctx, temp_bytes, "embedding_backward sort scratch");
  PT_CUDA_CHECK_CTX(ctx, cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys, skeys, order, sorder,
                                                         int(N), 0, end_bit, ctx.stream));
  PT_DISPATCH_FLOAT(dt, T, embed_bwd<T><<<unsigned(N), 256, 0, ctx.stream>>>(
      N, C, skeys, sorder, (const T*)dout, (T*)dweight));
  PT_LAUNCH_CHECK(ctx, "embedding_backward");
  free(ctx, temp);
  free(ctx, buf);
}

}  // namespace pt::cuda
