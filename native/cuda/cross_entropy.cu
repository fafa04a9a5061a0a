// Cross-entropy fused with its backward, as native/cpu/cross_entropy.cc, over logits the caller hands
// in row chunks (the model never holds fp32 logits for the whole batch: vocab 250,680 x 16k tokens
// would be 16 GB). One block per row: pass 1 keeps a running (max, sum) per thread over a strided
// slice of the vocabulary, merged across the block in a fixed order into the log-sum-exp; pass 2
// writes grad_scale * (softmax - onehot) over the logits in place. The loss goes into row_loss (a
// device tensor), so the host reads it once per micro-batch instead of once per chunk.
#include "cuda/common.cuh"

namespace pt::cuda {

static constexpr int kThreads = 512;

template <typename T>
__global__ void ce_kernel(int64_t V, const T* logits, const int32_t* targets, int32_t ignore,
                          float* row_loss, T* dlogits, float grad_scale, uint32_t* status) {
  __shared__ float scratch[32];
  __shared__ float target_logit;
  const int64_t n = blockIdx.x;
  const T* row = logits + n * V;
  int32_t t = targets[n];
  bool trained = t != ignore;
  if (trained && (t < 0 || t >= V)) {
    if (threadIdx.x == 0) atomicOr(status, uint32_t(kBadTarget));
    trained = false;
  }
  if (!trained) {
    if (threadIdx.x == 0) row_loss[n] = 0.f;
    if (dlogits)
      for (int64_t c = threadIdx.x; c < V; c += blockDim.x) st(dlogits + n * V, c, 0.f);
    return;
  }
  float m = -INFINITY, s = 0.f;
  for (int64_t c = threadIdx.x; c < V; c += blockDim.x) {
    const float x = ld(row, c);
    if (x > m) {
      s = s * expf(m - x) + 1.f;  // m = -inf on the first element: expf(-inf) = 0
      m = x;
    } else if (x != -INFINITY) {
      s += expf(x - m);
    }
  }
  const float M = block_max(m, scratch);
  // A thread that saw only -inf holds s = 0; skip its exp(-inf - M) (NaN when M is -inf too).
  const float S = block_sum(m == -INFINITY ? 0.f : s * expf(m - M), scratch);
  const float lse = M + logf(S);
  if (threadIdx.x == 0) {
    target_logit = ld(row, t);
    row_loss[n] = lse - target_logit;
  }
  // dlogits may alias logits: the target logit must be read before any thread overwrites it.
  __syncthreads();
  if (dlogits) {
    T* drow = dlogits + n * V;
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) {
      const float p = expf(ld(row, c) - lse);
      st(drow, c, grad_scale * (p - (c == t ? 1.f : 0.f)));
    }
  }
}

void cross_entropy(Context& ctx, DType dt, int64_t N, int64_t V, const void* logits, const int32_t* targets,
                   int32_t ignore_index, float* row_loss, void* dlogits, float grad_scale) {
  enter(ctx, "cross_entropy");
  if (N == 0) return;
  PT_DISPATCH_FLOAT(dt, T, ce_kernel<T><<<unsigned(N), kThreads, 0, ctx.stream>>>(
      V, (const T*)logits, targets, ignore_index, row_loss, (T*)dlogits, grad_scale, ctx.status));
  PT_LAUNCH_CHECK(ctx, "cross_entropy");
}

}  // namespace pt::cuda
