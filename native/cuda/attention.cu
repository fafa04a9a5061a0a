// Fused causal attention over packed variable-length documents (FlashAttention's varlen layout, with
// cu_seqlens), grouped-query heads, head_dim 8 to 128 (powers of two): the contract of native/cpu/attention.h with
// B = 1 (the same cu_seqlens, which the op passes straight through from the Batch). Forward keeps an online softmax per query row and
// saves the log-sum-exp; backward recomputes the probabilities from it (P = exp(s·scale - lse)).
//
// This is the correct-first version: fp32 math on fp32 shared-memory tiles with CUDA cores, one warp
// per query (or key) row, no tensor cores. Two mappings of a warp's 32 lanes alternate:
//   lane <-> key (or query) of a 32-wide tile for the score dot products (each lane a full D-long dot
//     against a row held in shared memory, rows padded to D + 1 floats so the 32 lanes hit 32 banks);
//   lane <-> D/32 output dimensions for the accumulators, the tile's probabilities broadcast by shuffle
//     (below D = 32, lanes D..31 hold no dimension: small heads as in stories260K, D = 8).
// Backward is FlashAttention-2's split: delta = rowsum(dO ∘ O); one kernel owns a few keys of one kv
// head and loops over every query head of its group and every query that sees those keys, so dK and
// dV sum the group in fp32 registers and are written once, without atomics (deterministic); a second
// kernel owns query rows and accumulates dQ over their keys. Speed (wgmma, TMA, bf16 tiles) is the
// next issue's; this file fixes the interface and the numbers the fast one must reproduce.
#include "cuda/common.cuh"

namespace pt::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kTile = 32;  // keys (forward, dq) or queries (dkdv) per shared-memory tile: one per lane

template <typename T, int D>
__device__ __forceinline__ void load_rows(float (*dst)[D + 1], int rows, const T* src, int64_t first,
                                          int64_t valid, int64_t heads, int64_t h) {
  // dst[r][c] = src[((first + r) * heads + h) * D + c] for r < valid, 0 beyond (masked anyway, but
  // a stale NaN times a zero probability would still be NaN).
  for (int e = threadIdx.x; e < rows * D; e += blockDim.x) {
    const int r = e / D, c = e % D;
    dst[r][c] = r < valid ? ld(src, ((first + r) * heads + h) * D + c) : 0.f;
  }
}

// Accumulator slots per lane, and whether slot d of this lane is a real dimension (a compile-time
// true from D = 32 up).
template <int D>
constexpr int lanes_dims() { return (D + 31) / 32; }
template <int D>
__device__ __forceinline__ bool has_dim(int lane, int d) { return D >= 32 || lane + 32 * d < D; }

template <int D>
__device__ __forceinline__ float dot_rows(const float* a, const float* b) {
  float s = 0.f;
#pragma unroll 16
  for (int c = 0; c < D; c++) s = fmaf(a[c], b[c], s);
  return s;
}

// grid (ceil(max_seqlen / BQ), Hq, docs); block kWarps warps, each owning RPW query rows.
template <typename T, int D, int RPW>
__global__ void __launch_bounds__(kWarps * 32) attn_fwd(int64_t total, int64_t Hq, int64_t Hkv, float scale,
                                                        const int32_t* cu, const T* q, const T* k, const T* v,
                                                        T* out, float* lse) {
  constexpr int BQ = kWarps * RPW, DL = lanes_dims<D>();
  __shared__ float Qs[BQ][D + 1];
  __shared__ float Ks[kTile][D + 1];
  __shared__ float Vs[kTile][D + 1];
  const int64_t start = cu[blockIdx.z], len = cu[blockIdx.z + 1] - start;
  const int64_t q0 = int64_t(blockIdx.x) * BQ;
  if (q0 >= len) return;  // uniform over the block: shorter documents than max_seqlen
  const int64_t h = blockIdx.y, hk = h / (Hq / Hkv);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  load_rows<T, D>(Qs, BQ, q, start + q0, min(int64_t(BQ), len - q0), Hq, h);
  float m[RPW], l[RPW], o[RPW][DL];
#pragma unroll
  for (int r = 0; r < RPW; r++) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int d = 0; d < DL; d++) o[r][d] = 0.f;
  }
  const int64_t kend = min(len, q0 + BQ);  // causal: no query of this block sees a key beyond its own
  for (int64_t k0 = 0; k0 < kend; k0 += kTile) {
    __syncthreads();
    load_rows<T, D>(Ks, kTile, k, start + k0, min(int64_t(kTile), kend - k0), Hkv, hk);
    load_rows<T, D>(Vs, kTile, v, start + k0, min(int64_t(kTile), kend - k0), Hkv, hk);
    __syncthreads();
#pragma unroll
    for (int r = 0; r < RPW; r++) {
      const int qr = warp * RPW + r;
      const int64_t i = q0 + qr;  // local position in the document
      if (i >= len || k0 > i) continue;  // uniform over the warp
      const int64_t j = k0 + lane;
      const float s = j <= i ? dot_rows<D>(Qs[qr], Ks[lane]) * scale : -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(s));  // finite: key k0 <= i is visible
      const float p = j <= i ? expf(s - m_new) : 0.f;
      const float corr = expf(m[r] - m_new);  // 0 on the first tile, where m is -inf
      l[r] = l[r] * corr + warp_sum(p);
#pragma unroll
      for (int d = 0; d < DL; d++) o[r][d] *= corr;
      const int last = int(min(int64_t(kTile) - 1, i - k0));
      for (int jj = 0; jj <= last; jj++) {
        const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
        for (int d = 0; d < DL; d++)
          if (has_dim<D>(lane, d)) o[r][d] = fmaf(pj, Vs[jj][lane + 32 * d], o[r][d]);
      }
      m[r] = m_new;
    }
  }
#pragma unroll
  for (int r = 0; r < RPW; r++) {
    const int64_t i = q0 + warp * RPW + r;
    if (i >= len) continue;
    const int64_t row = start + i;
    const float inv = 1.f / l[r];
#pragma unroll
    for (int d = 0; d < DL; d++)
      if (has_dim<D>(lane, d)) st(out, (row * Hq + h) * D + lane + 32 * d, o[r][d] * inv);
    if (lane == 0) lse[h * total + row] = m[r] + logf(l[r]);
  }
}

// delta[h, r] = dO[r, h, :] · O[r, h, :] in fp32, one warp per (row, head).
template <typename T, int D>
__global__ void attn_delta(int64_t total, int64_t Hq, const T* out, const T* dout, float* delta) {
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= total * Hq) return;
  const int64_t row = w / Hq, h = w % Hq;
  float s = 0.f;
  for (int c = lane; c < D; c += 32) s += ld(dout, w * D + c) * ld(out, w * D + c);
  s = warp_sum(s);
  if (lane == 0) delta[h * total + row] = s;
}

// dK, dV of KPW keys per warp (kWarps * KPW per block) of kv head blockIdx.y, over every query head of
// the group and every query that sees them. grid (ceil(max_seqlen / BK), Hkv, docs).
template <typename T, int D, int KPW>
__global__ void __launch_bounds__(kWarps * 32) attn_bwd_dkdv(int64_t total, int64_t Hq, int64_t Hkv, float scale,
                                                             const int32_t* cu, const T* q, const T* k,
                                                             const T* v, const T* dout, const float* lse,
                                                             const float* delta, T* dk, T* dv) {
  constexpr int BK = kWarps * KPW, DL = lanes_dims<D>();
  __shared__ float Ks[BK][D + 1];
  __shared__ float Vs[BK][D + 1];
  __shared__ float Qs[kTile][D + 1];
  __shared__ float Os[kTile][D + 1];  // dO
  __shared__ float Ls[kTile], Ds[kTile];
  const int64_t start = cu[blockIdx.z], len = cu[blockIdx.z + 1] - start;
  const int64_t k0 = int64_t(blockIdx.x) * BK;
  if (k0 >= len) return;
  const int64_t hk = blockIdx.y, group = Hq / Hkv;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  load_rows<T, D>(Ks, BK, k, start + k0, min(int64_t(BK), len - k0), Hkv, hk);
  load_rows<T, D>(Vs, BK, v, start + k0, min(int64_t(BK), len - k0), Hkv, hk);
  float gk[KPW][DL], gv[KPW][DL];
#pragma unroll
  for (int r = 0; r < KPW; r++)
#pragma unroll
    for (int d = 0; d < DL; d++) gk[r][d] = gv[r][d] = 0.f;
  for (int64_t h = hk * group; h < (hk + 1) * group; h++) {
    // Queries before k0 see none of these keys.
    for (int64_t i0 = k0; i0 < len; i0 += kTile) {
      const int64_t qn = min(int64_t(kTile), len - i0);
      __syncthreads();
      load_rows<T, D>(Qs, kTile, q, start + i0, qn, Hq, h);
      load_rows<T, D>(Os, kTile, dout, start + i0, qn, Hq, h);
      if (threadIdx.x < kTile) {
        Ls[threadIdx.x] = threadIdx.x < qn ? lse[h * total + start + i0 + threadIdx.x] : 0.f;
        Ds[threadIdx.x] = threadIdx.x < qn ? delta[h * total + start + i0 + threadIdx.x] : 0.f;
      }
      __syncthreads();
#pragma unroll
      for (int r = 0; r < KPW; r++) {
        const int kr = warp * KPW + r;
        const int64_t j = k0 + kr;
        if (j >= len) continue;  // uniform over the warp
        const int64_t i = i0 + lane;
        const bool seen = i < len && i >= j;
        float p = 0.f, ds = 0.f;
        if (seen) {
          p = expf(dot_rows<D>(Qs[lane], Ks[kr]) * scale - Ls[lane]);
          ds = p * (dot_rows<D>(Os[lane], Vs[kr]) - Ds[lane]);
        }
        for (int qq = 0; qq < kTile; qq++) {
          const float pq = __shfl_sync(0xffffffffu, p, qq), dq = __shfl_sync(0xffffffffu, ds, qq);
#pragma unroll
          for (int d = 0; d < DL; d++) {
            if (!has_dim<D>(lane, d)) continue;
            gv[r][d] = fmaf(pq, Os[qq][lane + 32 * d], gv[r][d]);
            gk[r][d] = fmaf(dq, Qs[qq][lane + 32 * d], gk[r][d]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < KPW; r++) {
    const int64_t j = k0 + warp * KPW + r;
    if (j >= len) continue;
    const int64_t base = ((start + j) * Hkv + hk) * D;
#pragma unroll
    for (int d = 0; d < DL; d++) {
      if (!has_dim<D>(lane, d)) continue;
      st(dk, base + lane + 32 * d, gk[r][d] * scale);
      st(dv, base + lane + 32 * d, gv[r][d]);
    }
  }
}

// dQ of RPW query rows per warp, over the keys each sees. grid (ceil(max_seqlen / BQ), Hq, docs).
template <typename T, int D, int RPW>
__global__ void __launch_bounds__(kWarps * 32) attn_bwd_dq(int64_t total, int64_t Hq, int64_t Hkv, float scale,
                                                           const int32_t* cu, const T* q, const T* k,
                                                           const T* v, const T* dout, const float* lse,
                                                           const float* delta, T* dq) {
  constexpr int BQ = kWarps * RPW, DL = lanes_dims<D>();
  __shared__ float Qs[BQ][D + 1];
  __shared__ float Os[BQ][D + 1];
  __shared__ float Ks[kTile][D + 1];
  __shared__ float Vs[kTile][D + 1];
  const int64_t start = cu[blockIdx.z], len = cu[blockIdx.z + 1] - start;
  const int64_t q0 = int64_t(blockIdx.x) * BQ;
  if (q0 >= len) return;
  const int64_t h = blockIdx.y, hk = h / (Hq / Hkv);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  load_rows<T, D>(Qs, BQ, q, start + q0, min(int64_t(BQ), len - q0), Hq, h);
  load_rows<T, D>(Os, BQ, dout, start + q0, min(int64_t(BQ), len - q0), Hq, h);
  float g[RPW][DL], L[RPW], Dl[RPW];
#pragma unroll
  for (int r = 0; r < RPW; r++) {
    const int64_t i = q0 + warp * RPW + r;
    L[r] = i < len ? lse[h * total + start + i] : 0.f;
    Dl[r] = i < len ? delta[h * total + start + i] : 0.f;
#pragma unroll
    for (int d = 0; d < DL; d++) g[r][d] = 0.f;
  }
  const int64_t kend = min(len, q0 + BQ);
  for (int64_t k0 = 0; k0 < kend; k0 += kTile) {
    __syncthreads();
    load_rows<T, D>(Ks, kTile, k, start + k0, min(int64_t(kTile), kend - k0), Hkv, hk);
    load_rows<T, D>(Vs, kTile, v, start + k0, min(int64_t(kTile), kend - k0), Hkv, hk);
    __syncthreads();
#pragma unroll
    for (int r = 0; r < RPW; r++) {
      const int qr = warp * RPW + r;
      const int64_t i = q0 + qr;
      if (i >= len || k0 > i) continue;
      const int64_t j = k0 + lane;
      float ds = 0.f;
      if (j <= i) {
        const float p = expf(dot_rows<D>(Qs[qr], Ks[lane]) * scale - L[r]);
        ds = p * (dot_rows<D>(Os[qr], Vs[lane]) - Dl[r]);
      }
      const int last = int(min(int64_t(kTile) - 1, i - k0));
      for (int jj = 0; jj <= last; jj++) {
        const float dsj = __shfl_sync(0xffffffffu, ds, jj);
#pragma unroll
        for (int d = 0; d < DL; d++)
          if (has_dim<D>(lane, d)) g[r][d] = fmaf(dsj, Ks[jj][lane + 32 * d], g[r][d]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < RPW; r++) {
    const int64_t i = q0 + warp * RPW + r;
    if (i >= len) continue;
#pragma unroll
    for (int d = 0; d < DL; d++)
      if (has_dim<D>(lane, d)) st(dq, ((start + i) * Hq + h) * D + lane + 32 * d, g[r][d] * scale);
  }
}

void check_dims(const char* op, int64_t D, int64_t Hq, int64_t Hkv, int64_t docs, int64_t max_seqlen) {
  if (D != 8 && D != 16 && D != 32 && D != 64 && D != 128)
    throw OpError(std::string(op) + ": head_dim " + std::to_string(D) + " is not supported on CUDA (8, 16, 32, 64 or 128)");
  if (Hkv <= 0 || Hq % Hkv != 0) throw OpError(std::string(op) + ": kv heads must divide query heads");
  if (docs > 65535 || Hq > 65535) throw OpError(std::string(op) + ": more than 65535 documents or heads in one call");
  if (max_seqlen <= 0) throw OpError(std::string(op) + ": max_seqlen must be positive");
}

}  // namespace

// Rows per warp: 4 in forward (the K/V tile is shared by 16 queries); 2 in dq, whose dO tile would
// otherwise push static shared memory past 48 KiB at D = 128.
constexpr int kFwdRows = 4, kDqRows = 2, kDkvKeys = 2;

// One instantiation per supported head_dim (check_dims has refused the others).
#define PT_ATTN_DIMS(LAUNCH) \
  switch (D) {               \
    case 8: LAUNCH(8); break;     \
    case 16: LAUNCH(16); break;   \
    case 32: LAUNCH(32); break;   \
    case 64: LAUNCH(64); break;   \
    default: LAUNCH(128); break;  \
  }

void attention_forward(Context& ctx, DType dt, int64_t total, int64_t docs, int64_t max_seqlen, int64_t Hq,
                       int64_t Hkv, int64_t D, float scale, const int32_t* cu_seqlens, const void* q,
                       const void* k, const void* v, void* out, float* lse) {
  enter(ctx, "attention");
  if (total == 0 || docs == 0) return;
  check_dims("attention", D, Hq, Hkv, docs, max_seqlen);
  if (scale == 0.f) scale = 1.f / std::sqrt(float(D));
  const dim3 grid(unsigned((max_seqlen + kWarps * kFwdRows - 1) / (kWarps * kFwdRows)), unsigned(Hq), unsigned(docs));
#define PT_ATTN_FWD(DIM)                                                                                  \
  attn_fwd<T, DIM, kFwdRows><<<grid, kWarps * 32, 0, ctx.stream>>>(total, Hq, Hkv, scale, cu_seqlens,    \
      (const T*)q, (const T*)k, (const T*)v, (T*)out, lse)
  PT_DISPATCH_FLOAT(dt, T, { PT_ATTN_DIMS(PT_ATTN_FWD); });
#undef PT_ATTN_FWD
  PT_LAUNCH_CHECK(ctx, "attention");
}

void attention_backward(Context& ctx, DType dt, int64_t total, int64_t docs, int64_t max_seqlen, int64_t Hq,
                        int64_t Hkv, int64_t D, float scale, const int32_t* cu_seqlens, const void* q,
                        const void* k, const void* v, const void* out, const void* dout,
                        const float* lse, void* dq, void* dk, void* dv) {
  enter(ctx, "attention_backward");
  if (total == 0 || docs == 0) return;
  check_dims("attention_backward", D, Hq, Hkv, docs, max_seqlen);
  if (scale == 0.f) scale = 1.f / std::sqrt(float(D));
  float* delta = (float*)alloc(ctx, size_t(total * Hq) * sizeof(float), "attention_backward delta");
  const unsigned dgrid = unsigned((total * Hq * 32 + 255) / 256);
  const dim3 kvgrid(unsigned((max_seqlen + kWarps * kDkvKeys - 1) / (kWarps * kDkvKeys)), unsigned(Hkv), unsigned(docs));
  const dim3 qgrid(unsigned((max_seqlen + kWarps * kDqRows - 1) / (kWarps * kDqRows)), unsigned(Hq), unsigned(docs));
#define PT_ATTN_BWD(DIM)                                                                                    \
  attn_delta<T, DIM><<<dgrid, 256, 0, ctx.stream>>>(total, Hq, (const T*)out, (const T*)dout, delta);      \
  attn_bwd_dkdv<T, DIM, kDkvKeys><<<kvgrid, kWarps * 32, 0, ctx.stream>>>(total, Hq, Hkv, scale, cu_seqlens, \
      (const T*)q, (const T*)k, (const T*)v, (const T*)dout, lse, delta, (T*)dk, (T*)dv);                  \
  attn_bwd_dq<T, DIM, kDqRows><<<qgrid, kWarps * 32, 0, ctx.stream>>>(total, Hq, Hkv, scale, cu_seqlens,   \
      (const T*)q, (const T*)k, (const T*)v, (const T*)dout, lse, delta, (T*)dq)
  PT_DISPATCH_FLOAT(dt, T, { PT_ATTN_DIMS(PT_ATTN_BWD); });
#undef PT_ATTN_BWD
  PT_LAUNCH_CHECK(ctx, "attention_backward");
  free(ctx, delta);
}

}  // namespace pt::cuda
