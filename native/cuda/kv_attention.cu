// Attention for incremental decoding over a preallocated KV cache: the contract of
// native/cpu/kv_attention.h, with the segments flattened by the op into one (row, slot, position)
// entry per new token (host-validated, uploaded once per call).
//
// Correct-first, in the style of attention.cu: fp32 math, no tensor cores. Two launches on the
// stream, so the second sees every row the first appended (a multi-token segment's later queries
// read the keys its earlier tokens wrote in the same call):
//   1. append: each entry's knew/vnew row is copied into its slot's cache row at its position;
//   2. attend: one warp per (entry, query head) walks keys [0, position] of its slot one at a time,
//      lanes <-> D/32 dimensions (below D = 32, lanes D..31 hold none), the score a warp sum and an
//      online softmax, so nothing scales with the cached length but the loop. Decoding reads each
//      cached key once per query head of its group; sharing that read across the group (and across
//      the many keys of a long cache, split-K) is the fast version's work.
#include "cuda/common.cuh"

namespace pt::cuda {

namespace {

constexpr int kWarps = 4;

// entries: [R, 3] int32 = (row of q / knew / vnew / out, slot, position).
template <typename T>
__global__ void kv_append(int64_t R, int64_t maxLen, int64_t rowElems, const int32_t* entries, const T* knew,
                          const T* vnew, T* kcache, T* vcache) {
  const int64_t n = R * rowElems;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t e = i / rowElems, c = i % rowElems;
    const int64_t row = entries[3 * e], slot = entries[3 * e + 1], pos = entries[3 * e + 2];
    const int64_t dst = (slot * maxLen + pos) * rowElems + c, src = row * rowElems + c;
    kcache[dst] = knew[src];
    vcache[dst] = vnew[src];
  }
}

template <int D>
constexpr int lanes_dims() { return (D + 31) / 32; }
template <int D>
__device__ __forceinline__ bool has_dim(int lane, int d) { return D >= 32 || lane + 32 * d < D; }

template <typename T, int D>
__global__ void __launch_bounds__(kWarps * 32) kv_attend(int64_t R, int64_t maxLen, int64_t Hq, int64_t Hkv, float scale,
                                                         const int32_t* entries, const T* q, const T* kcache,
                                                         const T* vcache, T* out) {
  constexpr int DL = lanes_dims<D>();
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (w >= R * Hq) return;  // uniform over the warp
  const int lane = threadIdx.x & 31;
  const int64_t e = w / Hq, h = w % Hq, hk = h / (Hq / Hkv);
  const int64_t row = entries[3 * e], slot = entries[3 * e + 1], pos = entries[3 * e + 2];
  // The query pre-scaled, as the CPU's decode path takes it (q·scale, then the dot).
  float qf[DL], o[DL];
#pragma unroll
  for (int d = 0; d < DL; d++) {
    qf[d] = has_dim<D>(lane, d) ? ld(q, (row * Hq + h) * D + lane + 32 * d) * scale : 0.f;
    o[d] = 0.f;
  }
  const int64_t stride = Hkv * D;
  const T* kc = kcache + slot * maxLen * stride + hk * D;
  const T* vc = vcache + slot * maxLen * stride + hk * D;
  float m = -INFINITY, l = 0.f;
  for (int64_t j = 0; j <= pos; j++) {
    float s = 0.f;
#pragma unroll
    for (int d = 0; d < DL; d++)
      if (has_dim<D>(lane, d)) s = fmaf(qf[d], ld(kc, j * stride + lane + 32 * d), s);
    s = warp_sum(s);
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);  // 0 at the first key, where m is -inf
    const float p = expf(s - m_new);
    l = l * corr + p;
#pragma unroll
    for (int d = 0; d < DL; d++)
      if (has_dim<D>(lane, d)) o[d] = fmaf(p, ld(vc, j * stride + lane + 32 * d), o[d] * corr);
    m = m_new;
  }
  const float inv = 1.f / l;
#pragma unroll
  for (int d = 0; d < DL; d++)
    if (has_dim<D>(lane, d)) st(out, (row * Hq + h) * D + lane + 32 * d, o[d] * inv);
}

}  // namespace

void kv_attention(Context& ctx, DType dt, int64_t R, const int32_t* entries, int64_t maxLen, int64_t Hq, int64_t Hkv,
                  int64_t D, float scale, const void* q, const void* knew, const void* vnew, void* kcache, void* vcache,
                  void* out) {
  enter(ctx, "kvAttention");
  if (R == 0) return;
  if (D != 8 && D != 16 && D != 32 && D != 64 && D != 128)
    throw OpError("kvAttention: head_dim " + std::to_string(D) + " is not supported on CUDA (8, 16, 32, 64 or 128)");
  if (Hkv <= 0 || Hq % Hkv != 0) throw OpError("kvAttention: kv heads must divide query heads");
  if (scale == 0.f) scale = 1.f / std::sqrt(float(D));
  const int64_t rowElems = Hkv * D;
  const unsigned agrid = unsigned((R * Hq * 32 + kWarps * 32 - 1) / (kWarps * 32));
#define PT_KV_ATTEND(DIM)                                                                                      \
  kv_attend<T, DIM><<<agrid, kWarps * 32, 0, ctx.stream>>>(R, maxLen, Hq, Hkv, scale, entries, (const T*)q,    \
                                                           (const T*)kcache, (const T*)vcache, (T*)out)
  PT_DISPATCH_FLOAT(dt, T, {
    kv_append<T><<<grid_for(R * rowElems), 256, 0, ctx.stream>>>(R, maxLen, rowElems, entries, (const T*)knew,
                                                                 (const T*)vnew, (T*)kcache, (T*)vcache);
    switch (D) {
      case 8: PT_KV_ATTEND(8); break;
      case 16: PT_KV_ATTEND(16); break;
      case 32: PT_KV_ATTEND(32); break;
      case 64: PT_KV_ATTEND(64); break;
      default: PT_KV_ATTEND(128); break;
    }
  });
#undef PT_KV_ATTEND
  PT_LAUNCH_CHECK(ctx, "kvAttention");
}

}  // namespace pt::cuda
