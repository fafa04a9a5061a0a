// Blocked GEMM driver. Loop nest, per call:
//   op(A) packed once when there are several column chunks
//   op(B) cut in NC-wide column chunks, shared by the threads (from the packed-weights cache when B
//   is unchanged since an earlier call; else, for dY·W's B, all chunks packed first in stripes of
//   rows; else into a ring of two chunk buffers, each chunk's panels packed just before its tasks)
//   for each (chunk, task) (a block of rows × a range of the chunk's panels), one per thread at a time:
//       for each KC-deep slice of K: (pack op(A)[rows, slice]); micro-kernel over (panel, MR-rows)
//       round the task's fp32 workspace into C once
// Keeping all of K inside a task lets the fp32 partial sums live in a small per-thread workspace,
// so C is rounded exactly once whatever its dtype. Tasks split the rows when there are enough of
// them and the columns otherwise (x·Wᵀ with few tokens), so both cores stay busy.
#include "gemm.h"

#include <cstdio>
#include <memory>
#include <algorithm>
#include <atomic>
#include <thread>
#include <cstdlib>
#include <new>
#include <string>
#include <type_traits>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "gemm_kernels.h"
#include "gemm_small_m.h"
#include "pack_cache.h"
#include "env.h"

namespace pt {
namespace gemm_detail {

// Each path keeps a block of A (MC_PANELS micro-panels, one KC slice), the task's workspace and
// the B micro-panel in use in L2 (~0.6 of its 1 MiB on Zen 4); the kernel streams both panels
// from there. The fp32 and pair slices are 64 KiB per B micro-panel: twice the earlier 32 KiB
// halves the kernel calls and the workspace passes per task (one thread, CPU time, same process:
// 1-3% on the 7B shapes; a smaller A block with it, MC_PANELS 8, gained nothing). x·Wᵀ's pair
// slices (KC_XWT) are twice as deep again, a 128 KiB B micro-panel streamed from L2: half the
// A-block passes and workspace read-modify-writes, and B's panel-over-all-K packing writes half
// as many slices (one thread, CPU time, same process, 7B x·Wᵀ shapes: cold 1.03-1.04x, warm
// 1.01x; the whole 4096 as one slice measured the same within the noise; f32 at 1024: 0.98-1.03x).
// dY·W's slices (KC_DYW) are twice KC for the same reasons (7B q_proj dY·W, two threads, same
// process: f32 1024 and bf16 2048 1.5-2% faster than 512 and 1024; four times KC measured the same
// as twice). dYᵀ·X keeps KC: its K is the token count. rows(kc) is the packed row count of a k-slice.
struct NoTileState {
  static void begin() {}
  static void end() {}
};

// The fp32 paths (Pair false: fp32 packed values, also from bf16 inputs where there is no
// AVX512-BF16) and the pair paths (vdpbf16ps: a packed value is the bf16 pair (k, k+1) in 32 bits).
// The direct paths (x·Wᵀ with W read in place, see gemm()) block 8 rows of W at a time: MC_PANELS
// 8 is 64 rows, a 256 KiB slice of W in L2 beside the 192 KiB panel of x (bf16; f32 half of
// each); NC 528 is 11 panels of x, all of a 512-token batch in one chunk. Their KC is the packed
// path's for x·Wᵀ, so each output sums the same slices in the same order: bit-identical results.
template <bool Pair, class Kern, int64_t Mc, int64_t Nc>
struct PathOf : NoTileState {
  static constexpr bool direct = Mc == 8;
  static constexpr bool split_k = true;
  static constexpr const char* name = Pair ? (direct ? "pair-direct" : "pair") : (direct ? "f32-direct" : "f32");
  using Kernel = Kern;
  using Packed = std::conditional_t<Pair, uint32_t, float>;
  static constexpr int64_t KC = Pair ? 1024 : 512, KC_XWT = Pair ? 2048 : KC, KC_DYW = 2 * KC, MC_PANELS = Mc, NC = Nc;
  static int64_t rows(int64_t kc) { return Pair ? (kc + 1) / 2 : kc; }
  template <typename T>
  static void pack_a(const View<T>& v, int64_t r0, int64_t n, int64_t k0, int64_t kc, Packed* dst) {
    if constexpr (Pair)
      pack_pair_panel<Kernel::MR>(v, r0, n, k0, kc, dst);
    else
      pack_f32_panel<Kernel::MR>(v, r0, n, k0, kc, dst);
  }
  template <typename T, class Dst>
  static void pack_b_slices(const View<T>& v, int64_t r0, int64_t n, int64_t K, int64_t KC, Dst dst) {
    if constexpr (Pair)
      pack_pair_panel_slices<Kernel::NR>(v, r0, n, 0, K, KC, dst);
    else
      pack_f32_panel_slices<Kernel::NR>(v, r0, n, 0, K, KC, dst);
  }
  template <typename T>
  static void pack_b_panels(const View<T>& v, int64_t r0, int64_t n, int64_t k0, int64_t kc, Packed* dst, int64_t stride,
                            bool stream = false) {
    if constexpr (Pair)
      pack_pair_panels<Kernel::NR>(v, r0, n, k0, kc, dst, stride, stream);
    else
      pack_f32_panels<Kernel::NR>(v, r0, n, k0, kc, dst, stride, stream);
  }
};
using PathF32 = PathOf<false, KernelF32, 12, 512>;
#if defined(POLYTUNE_GEMM_DIRECT)
using PathF32Direct = PathOf<false, KernelDirect<OpsF32>, 8, 528>;
#endif
#if defined(__AVX512BF16__)
using PathPair = PathOf<true, KernelPair, 12, 512>;
#if defined(POLYTUNE_GEMM_DIRECT)
using PathPairDirect = PathOf<true, KernelDirect<OpsPair>, 8, 528>;
#endif
#endif

#if defined(POLYTUNE_GEMM_AMX)
// AMX tiles consume 32 k per step, so slices are padded to 16 pair rows.
struct PathAmx {
  static constexpr bool direct = false;
  static constexpr bool split_k = false;  // a slice is packed whole: its padding is written with its last rows
  static constexpr const char* name = "amx";
  using Kernel = KernelAmx;
  using Packed = uint32_t;
  static constexpr int64_t KC = 256, KC_XWT = KC, KC_DYW = KC, MC_PANELS = 8, NC = 1024;
  static int64_t rows(int64_t kc) { return (kc + 31) / 32 * 16; }
  static void pack_a(const View<bf16>& v, int64_t r0, int64_t n, int64_t k0, int64_t kc, uint32_t* dst) {
    pack_amx_a<Kernel::MR>(v, r0, n, k0, kc, dst);
  }
  static void pack_b(const View<bf16>& v, int64_t r0, int64_t n, int64_t k0, int64_t kc, uint32_t* dst) {
    pack_pair_panel<Kernel::NR>(v, r0, n, k0, kc, dst);
    const int64_t filled = (kc + 1) / 2;
    std::memset(dst + filled * Kernel::NR, 0, size_t(rows(kc) - filled) * Kernel::NR * sizeof(uint32_t));
  }
  template <class Dst>
  static void pack_b_slices(const View<bf16>& v, int64_t r0, int64_t n, int64_t K, int64_t KC, Dst dst) {
    for (int64_t s = 0; s * KC < K; s++) pack_b(v, r0, n, s * KC, std::min(KC, K - s * KC), dst(s));
  }
  static void pack_b_panels(const View<bf16>& v, int64_t r0, int64_t n, int64_t k0, int64_t kc, uint32_t* dst, int64_t stride,
                            bool = false) {
    for (int64_t g = 0; g * Kernel::NR < n; g++)
      pack_b(v, r0 + g * Kernel::NR, std::min<int64_t>(Kernel::NR, n - g * Kernel::NR), k0, kc, dst + g * stride);
  }
  static void begin() { amx_tiles_begin(); }
  static void end() { amx_tiles_end(); }
};
#endif

// Grow-only, 64-byte aligned scratch owned by the calling thread; OpenMP workers only get slices
// of it, so nothing is allocated (or can throw) inside the parallel region. A large one (at the 7B
// shapes the ring of packed B chunks and the shared packed A are 8-30 MiB) asks for 2 MiB pages:
// with the kernel's transparent huge pages on "madvise" (Debian's default) it would otherwise be
// 4 KiB pages, one TLB entry per 4 KiB of packed data that the micro-kernels stream through.
class Scratch {
 public:
  ~Scratch() { std::free(p_); }
  char* get(size_t bytes) {
    if (bytes > n_) {
      std::free(p_);
      constexpr size_t huge = size_t(2) << 20;
      const size_t align = bytes >= 2 * huge ? huge : 64;
      n_ = (bytes + align - 1) / align * align;
      p_ = std::aligned_alloc(align, n_);
      if (!p_) {
        n_ = 0;
        throw OpError("gemm: cannot allocate " + std::to_string(bytes) + " bytes of packing buffers");
      }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      if (align == huge) madvise(p_, n_, MADV_HUGEPAGE);  // advice only: a refusal changes nothing
#endif
    }
    return static_cast<char*>(p_);
  }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Spins briefly (the panel being waited for takes microseconds), then yields the core: on a shared
// machine the thread packing it may be the one that needs it.
inline void wait_until(const std::atomic<int64_t>& n, int64_t want) {
  for (int spins = 0; n.load(std::memory_order_acquire) < want; spins++) {
    if (spins < 4096) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
}

// C's row = w (or C's row + w), rounded once to T. The bf16 rounding is f32_to_bf16's integer
// round-to-nearest-even done 16 lanes at a time (vcvtneps2bf16 would flush subnormal sums to zero
// and differ from the scalar path); GCC leaves the scalar loop unvectorised because of its NaN branch.
// `stream`: C is larger than the L3 will keep and is not read here, so whole aligned vectors go
// out with non-temporal stores, which skip reading each line of C before overwriting it (the
// 4096×4096 dYᵀ·X spent 6% of its time copying the workspace into C).
inline void write_row(float* c, const float* w, int64_t n, bool add, bool stream) {
  if (add) {
    for (int64_t j = 0; j < n; j++) c[j] += w[j];
    return;
  }
  int64_t j = 0;
#if defined(POLYTUNE_PACK_AVX512)
  if (stream) {
    for (; j < n && reinterpret_cast<uintptr_t>(c + j) % 64; j++) c[j] = w[j];
    for (; j + 16 <= n; j += 16) _mm512_stream_ps(c + j, _mm512_loadu_ps(w + j));
  }
#endif
  std::memcpy(c + j, w + j, size_t(n - j) * sizeof(float));
}
#if defined(POLYTUNE_PACK_AVX512)
// f32_to_bf16 on 16 lanes, each result in the low half of its 32-bit lane.
inline __m512i round_bf16(__m512 v) {
  constexpr __mmask16 all = 0xffff;  // masked forms: see the note in transpose.h
  const __m512i u = _mm512_castps_si512(v);
  const __m512i hi = _mm512_maskz_srli_epi32(all, u, 16);
  const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
  const __m512i r = _mm512_maskz_srli_epi32(all, _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  const __m512i quiet = _mm512_or_si512(hi, _mm512_set1_epi32(0x40));
  return _mm512_mask_blend_epi32(nan, r, quiet);
}
// The masked lanes of v (+ C's old values) into C, rounded once to C's dtype.
inline void store16(float* c, __m512 v, __mmask16 m, bool add) {
  _mm512_mask_storeu_ps(c, m, add ? _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c)) : v);
}
inline void store16(bf16* c, __m512 v, __mmask16 m, bool add) {
  _mm512_mask_cvtepi32_storeu_epi16(c, m, round_bf16(add ? _mm512_add_ps(v, load16_f32(c, m)) : v));
}
#endif
inline void write_row(bf16* c, const float* w, int64_t n, bool add, bool stream) {
  int64_t j = 0;
#if defined(POLYTUNE_PACK_AVX512)
  auto rounded = [&](int64_t at, __mmask16 m) {
    __m512 v = _mm512_maskz_loadu_ps(m, w + at);
    if (add) v = _mm512_add_ps(v, load16_f32(c + at, m));
    return round_bf16(v);
  };
  if (stream && !add) {
    // Up to the first 32-byte boundary with a masked store, then 16 values (32 bytes) per stream.
    const int64_t head = std::min<int64_t>(n, (32 - int64_t(reinterpret_cast<uintptr_t>(c) % 32)) % 32 / 2);
    if (head) _mm512_mask_cvtepi32_storeu_epi16(c, first_lanes(head), rounded(0, first_lanes(head)));
    for (j = head; j + 16 <= n; j += 16)
      _mm256_stream_si256(reinterpret_cast<__m256i*>(c + j), _mm512_maskz_cvtepi32_epi16(0xffff, rounded(j, 0xffff)));
  }
  for (; j < n; j += 16) {
    const __mmask16 m = first_lanes(n - j);
    _mm512_mask_cvtepi32_storeu_epi16(c + j, m, rounded(j, m));
  }
#endif
  for (; j < n; j++) c[j] = f32_to_bf16(add ? bf16_to_f32(c[j]) + w[j] : w[j]);
}

#if defined(POLYTUNE_GEMM_DIRECT)
// The direct paths compute Cᵀ: C[j][i] (+)= w[i][j] for i < rows, j < cols, by 16×16 transposes.
template <typename T>
void write_transposed(T* c, int64_t ldc, const float* w, int64_t ldw, int64_t rows, int64_t cols, bool add) {
  for (int64_t i0 = 0; i0 < rows; i0 += 16) {
    const __mmask16 mi = first_lanes(rows - i0);
    for (int64_t j0 = 0; j0 < cols; j0 += 16) {
      const int64_t nj = std::min<int64_t>(16, cols - j0);
      __m512 v[16];
      for (int i = 0; i < 16; i++) v[i] = load16_f32(w + (i0 + i) * ldw + j0, i0 + i < rows ? first_lanes(nj) : __mmask16(0));
      transpose16(v);
      for (int64_t j = 0; j < nj; j++) store16(c + (j0 + j) * ldc + i0, v[j], mi, add);
    }
  }
}
#endif

// C is written with non-temporal stores above this size: half the L3, which C would only flush
// on its way out. POLYTUNE_GEMM_STREAM_MB overrides it (0: every C; the tests' knob for that path).
inline double stream_bytes() {
  return env_number("POLYTUNE_GEMM_STREAM_MB", 16.0) * double(1 << 20);
}
// The largest op(B) packed whole in stripes (see run()); POLYTUNE_GEMM_STRIPE_MB overrides it (0:
// never, the tests' knob for the ring).
inline double stripe_bytes() {
  return env_number("POLYTUNE_GEMM_STRIPE_MB", 128.0) * double(1 << 20);
}

template <class Path, typename T>
void run(bool tA, bool tB, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
         int64_t ldb, T* C, int64_t ldc, bool accumulate, const PackKey* bkey) {
  using Kernel = typename Path::Kernel;
  using P = typename Path::Packed;
  constexpr int MR = Kernel::MR, NR = Kernel::NR;
  // Direct: A (W) is read in place by the kernel, never packed, and C receives the transpose.
  constexpr bool direct = Path::direct;
  const int64_t KC = tA ? Path::KC : tB ? Path::KC_XWT : Path::KC_DYW;
  const View<T> a{A, lda, tA};
  const View<T> bt{B, ldb, !tB};  // op(B) transposed: its rows are op(B)'s columns

  const int64_t kblocks = ceil_div(K, KC);
  const int64_t slice_rows = Path::rows(KC);  // only the last slice may be shorter
  const int64_t kp_total = (kblocks - 1) * slice_rows + Path::rows(K - (kblocks - 1) * KC);
  const int64_t mpanels = ceil_div(M, MR);
  // Wide column chunks repack A less often; the cap bounds the shared packed B for very deep K.
  const int64_t nc_cap = std::max<int64_t>(4 * NR, (int64_t(32) << 20) / (kp_total * int64_t(sizeof(P))) / NR * NR);
  // Each chunk repacks the task's rows of op(A); when op(A) is stored transposed (dYᵀ·X) that
  // packing gathers 14-value pieces of rows far apart and costs several times the plain copy, so
  // twice the chunk width halves it (+4-6% on the 4096×4096×512 dYᵀ·X, one thread; the same width
  // on x·Wᵀ and dY·W costs 1-4%: their A packing is cheap and the wider workspace crowds L2).
  const int64_t nc = std::min({Path::NC * (tA ? 2 : 1), nc_cap, ceil_div(N, NR) * NR});
  const int64_t nc_panels = nc / NR;

  const bool stream_c = !accumulate && double(M) * double(N) * sizeof(T) > stream_bytes();
  // A tiny product is not worth waking a second thread for.
  int nt = num_threads();
  if (double(M) * double(N) * double(K) < 64.0 * 64 * 64) nt = 1;
  const bool split_rows = nt == 1 || mpanels >= 4 * nt || mpanels >= nc_panels;
  int64_t row_blocks = ceil_div(mpanels, Path::MC_PANELS);
  if (split_rows && nt > 1) row_blocks = nt * ceil_div(mpanels, int64_t(nt) * Path::MC_PANELS);
  row_blocks = std::min(row_blocks, mpanels);
  const int64_t block_panels = ceil_div(mpanels, row_blocks);
  row_blocks = ceil_div(mpanels, block_panels);
  const int64_t col_splits = split_rows ? 1 : std::min<int64_t>(nt, nc_panels);
  const int64_t split_panels = ceil_div(nc_panels, col_splits);
  nt = int(std::min<int64_t>(nt, row_blocks * col_splits));

  const size_t b_elems = size_t(kp_total) * size_t(nc);
  const size_t a_elems = direct ? 0 : size_t(block_panels) * MR * size_t(Path::rows(std::min(K, KC)));
  // With more than one column chunk, op(A) is packed once for the call (slice-major: slice kb's
  // panels side by side) instead of once per chunk: a 7B x·Wᵀ packed the same 512 rows 8-22 times,
  // 4-7% of its time. The slices no longer sit in the thread's L2 buffer but are read from L3 once
  // per slice and task, then reused from L2 by every B panel of the chunk.
  const int64_t chunks = ceil_div(N, nc);
  const size_t a_shared_elems = size_t(mpanels) * MR * size_t(kp_total);
  const bool a_shared = !direct && chunks > 1 && a_shared_elems * sizeof(P) <= (size_t(64) << 20);
  const size_t a_shared_bytes = a_shared ? (a_shared_elems * sizeof(P) + 63) / 64 * 64 : 0;
  const size_t ws_elems = size_t(block_panels) * MR * size_t(split_panels) * NR;
  const size_t a_bytes = (a_elems * sizeof(P) + 63) / 64 * 64;
  const size_t per_thread = a_bytes + (ws_elems * sizeof(float) + 63) / 64 * 64;
  // Packed op(B) for all column chunks, from the cache (skip packing) or into a new cache entry.
  std::shared_ptr<PackedB> cached;
  bool fill = false;
  if (bkey) {
    char layout[160];
    std::snprintf(layout, sizeof layout, "%s/%zu tB=%d N=%lld K=%lld ldb=%lld nc=%lld kc=%lld", Path::name, sizeof(T),
                  int(tB), (long long)N, (long long)K, (long long)ldb, (long long)nc, (long long)KC);
    cached = pack_cache_get(*bkey, layout, size_t(chunks) * b_elems * sizeof(P), &fill);
  }
  P* const cache_base = cached ? static_cast<P*>(cached->data) : nullptr;
  const bool packed_already = cached && !fill;
  // Where a k's values of op(B) are contiguous (dY·W's W, a [K, N] matrix), op(B) is packed whole
  // before any task, in stripes of rows that sweep B from start to end, every column chunk's
  // panels written with non-temporal stores; the tasks then read the packing back from memory, as
  // they read a cached packing. Chunk by chunk, a pack item read 0.5-1 KiB of each row, rows 8-16
  // KiB apart: on one Zen 4 core of the development machine any such pattern read at 12 GB/s (8
  // KiB of every 16 as well), a sequential sweep at 34; and a chunk's ring slot, out of the cache
  // by then, was read before being written. 7B q_proj dY·W, two threads, same process: 0.5-2.5%
  // faster on an idle machine, within 1-2% of the cached packing; while memory was slow, the ring
  // took 5-13% longer than the stripes. It takes a scratch buffer the size of the
  // packing, so above POLYTUNE_GEMM_STRIPE_MB (default 128) the ring below is used. Not on the
  // AMX path: its slices are padded as a whole (pack_b), not a stripe at a time. A stripe (256
  // KiB of a 4096-wide B) lies inside one k-slice and starts on a pair.
  const int64_t stripe_rows = 64 / int64_t(sizeof(T));
  const bool by_panel = !bt.trans;
  const bool stripes = Path::split_k && !by_panel && !packed_already && chunks > 1 && KC % stripe_rows == 0 &&
                       double(chunks) * double(b_elems) * sizeof(P) <= stripe_bytes();
  // Otherwise, outside the cache, op(B)'s chunks take turns in a ring of two chunk buffers in the
  // scratch (kept for the thread's next call): chunk c+2 is packed where chunk c was, once c's
  // tasks are done.
  const int64_t ring = std::min<int64_t>(chunks, 2);
  static thread_local Scratch scratch;
  const size_t b_bytes = cached ? 0 : ((stripes ? size_t(chunks) : size_t(ring)) * b_elems * sizeof(P) + 63) / 64 * 64;
  char* base = scratch.get(b_bytes + a_shared_bytes + per_thread * size_t(nt) + 64);
  P* const bpack = reinterpret_cast<P*>(base);
  P* const aall = a_shared ? reinterpret_cast<P*>(base + b_bytes) : nullptr;
  char* const thread_base = base + b_bytes + a_shared_bytes;
  auto chunk_b = [&](int64_t ch) {
    return cached ? cache_base + ch * int64_t(b_elems) : bpack + (stripes ? ch : ch % ring) * int64_t(b_elems);
  };

  // The hand-out's shared state: the next item, and per column chunk its packed panels and its
  // finished tasks (a ring buffer is reused once the tasks that read it are done).
  std::atomic<int64_t> next_item{0}, a_packed{0}, stripes_packed{0};
  std::unique_ptr<std::atomic<int64_t>[]> packed(new std::atomic<int64_t>[size_t(2 * chunks)]);
  std::atomic<int64_t>* const done = packed.get() + chunks;
  for (int64_t ch = 0; ch < 2 * chunks; ch++) packed[ch].store(0, std::memory_order_relaxed);

#pragma omp parallel num_threads(nt)
  {
    const int tid = thread_index();
    P* const apack = reinterpret_cast<P*>(thread_base + per_thread * size_t(tid));
    float* const ws = reinterpret_cast<float*>(reinterpret_cast<char*>(apack) + a_bytes);
    Path::begin();

    // Row block rb's panels of op(A), every k-slice, into the shared packing.
    auto pack_a_block = [&](int64_t rb) {
      const int64_t p0 = rb * block_panels, p1 = std::min(mpanels, p0 + block_panels);
      for (int64_t kb = 0; kb < kblocks; kb++) {
        const int64_t k0 = kb * KC, kc = std::min(KC, K - k0), kp = Path::rows(kc);
        P* const slice = aall + kb * slice_rows * MR * mpanels;
        for (int64_t ip = p0; ip < p1; ip++)
          Path::pack_a(a, ip * MR, std::min<int64_t>(MR, M - ip * MR), k0, kc, slice + ip * kp * MR);
      }
    };
    // One task: rows [p0, p1) panels × B panels [q0, q1) of column chunk jc, over all of K.
    auto task_body = [&](int64_t jc, const P* bchunk, int64_t npan, int64_t splits, int64_t task) {
      const int64_t span = ceil_div(npan, splits);
      const int64_t rb = task / splits, s = task % splits;
      const int64_t p0 = rb * block_panels, p1 = std::min(mpanels, p0 + block_panels);
      const int64_t q0 = s * span, q1 = std::min(npan, q0 + span);
      if (p0 >= p1 || q0 >= q1) return;
      const int64_t ldws = (q1 - q0) * NR;
      for (int64_t kb = 0; kb < kblocks; kb++) {
        const int64_t k0 = kb * KC, kc = std::min(KC, K - k0), kp = Path::rows(kc);
        const P* ablock = apack;
        if (aall) {
          ablock = aall + kb * slice_rows * MR * mpanels + p0 * kp * MR;
        } else if (!direct) {
          for (int64_t ip = p0; ip < p1; ip++) {
            const int64_t r0 = ip * MR;
            Path::pack_a(a, r0, std::min<int64_t>(MR, M - r0), k0, kc, apack + (ip - p0) * kp * MR);
          }
        }
        const P* bslice = bchunk + kb * slice_rows * nc;
        for (int64_t q = q0; q < q1; q++) {
          for (int64_t ip = p0; ip < p1; ip++) {
            float* const wp = ws + (ip - p0) * MR * ldws + (q - q0) * NR;
            if constexpr (direct) {
              // P-sized units of A: the pair path checked that a row starts on a pair (gemm()).
              const int64_t lda_p = lda * int64_t(sizeof(T)) / int64_t(sizeof(P));
              const P* ap = reinterpret_cast<const P*>(A + ip * MR * lda + k0);
              Kernel::run(int(std::min<int64_t>(MR, M - ip * MR)), int(std::min<int64_t>(NR, N - jc - q * NR)), kp, ap, lda_p,
                          bslice + q * kp * NR, wp, ldws, kb > 0);
            } else {
              const P* ap = ablock + (ip - p0) * kp * MR;
              if (M - ip * MR < MR)
                Kernel::run_tail(int(M - ip * MR), kp, ap, bslice + q * kp * NR, wp, ldws, kb > 0);
              else
                Kernel::run(kp, ap, bslice + q * kp * NR, wp, ldws, kb > 0);
            }
          }
        }
      }
      const int64_t r_end = std::min(M, p1 * MR);
      const int64_t c0 = jc + q0 * NR, c_end = std::min(N, jc + q1 * NR);
#if defined(POLYTUNE_GEMM_DIRECT)
      if constexpr (direct) {
        write_transposed(C + c0 * ldc + p0 * MR, ldc, ws, ldws, r_end - p0 * MR, c_end - c0, accumulate);
        return;
      }
#endif
      for (int64_t r = p0 * MR; r < r_end; r++)
        write_row(C + r * ldc + c0, ws + (r - p0 * MR) * ldws, c_end - c0, accumulate, stream_c);
#if defined(POLYTUNE_PACK_AVX512)
      if (stream_c) _mm_sfence();  // the streamed lines are visible before the task counts as done
#endif
    };
    // Stripe s: rows [k0, k1) of op(B), every column chunk's panels, streamed to memory, a row (a
    // pair of rows) at a time across all chunks, so B is read in memory order (in a standalone
    // model 17 GB/s of B on one core, against 14 chunk by chunk within the stripe).
    auto pack_stripe = [&](int64_t s) {
      const int64_t k0 = s * stripe_rows, k1 = std::min(K, k0 + stripe_rows);
      const int64_t kb = k0 / KC, s0 = kb * KC, kc = std::min(KC, K - s0);
      const int64_t step = Path::rows(2) == 1 ? 2 : 1;  // memory rows per packed row
      for (int64_t k = k0; k < k1; k += step)
        for (int64_t ch = 0; ch < chunks; ch++) {
          const int64_t jc = ch * nc;
          Path::pack_b_panels(bt, jc, std::min(nc, N - jc), k, std::min(step, k1 - k),
                              chunk_b(ch) + kb * slice_rows * nc + Path::rows(k - s0) * NR, Path::rows(kc) * NR, true);
        }
    };
    // B's pack items. Where op(B)'s columns are contiguous in k (x·Wᵀ: W's rows), an item is one
    // panel over all of K, each row read as one stream; otherwise (a k's values contiguous), one
    // k-slice of a group of panels, each memory row read across the group (see pack_pair_panels).
    const int64_t npan_max = ceil_div(std::min(nc, N), NR);
    constexpr int64_t kGroup = 8;
    const int64_t groups = ceil_div(npan_max, kGroup);
    auto pack_item = [&](int64_t jc, P* bchunk, int64_t npan, int64_t j) {
      if (by_panel) {
        if (j >= npan) return;
        const int64_t c0 = jc + j * NR;
        Path::pack_b_slices(bt, c0, std::min<int64_t>(NR, N - c0), K, KC, [&](int64_t kb) {
          return bchunk + kb * slice_rows * nc + j * Path::rows(std::min(KC, K - kb * KC)) * NR;
        });
        return;
      }
      const int64_t kb = j / groups, g0 = j % groups * kGroup;
      if (g0 >= npan) return;
      const int64_t k0 = kb * KC, kc = std::min(KC, K - k0), kp = Path::rows(kc);
      const int64_t c0 = jc + g0 * NR, cols = std::min(std::min(npan - g0, kGroup) * NR, N - c0);
      Path::pack_b_panels(bt, c0, cols, k0, kc, bchunk + kb * slice_rows * nc + g0 * kp * NR, kp * NR);
    };

    // One hand-out for the whole call, a single item at a time in a fixed order: op(A)'s row
    // blocks when it is shared, chunk 0's B panels, chunk 0's tasks, chunk 1's panels, ... A
    // chunk's panels are packed just before the tasks that read them, so those tasks find them in
    // cache, and there is one barrier per call. An item may wait only for items handed out before
    // it (a task for its chunk's panels and op(A)'s blocks, a panel in the ring for the tasks of
    // the chunk two back), whose threads are running them and, by the same rule, are not waiting
    // for it: no deadlock. A thread that lost its core for a while does fewer items instead of
    // holding a barrier; results do not depend on which thread runs an item (its outputs are its
    // own, in a fixed order).
    const int64_t per_chunk = row_blocks * col_splits;
    const int64_t packs = packed_already || stripes ? 0 : by_panel ? npan_max : kblocks * groups;
    const int64_t a_items = aall ? row_blocks : 0;
    const int64_t stripe_items = stripes ? ceil_div(K, stripe_rows) : 0;
    const int64_t items = a_items + stripe_items + chunks * (packs + per_chunk);
    for (;;) {
      int64_t i = next_item.fetch_add(1, std::memory_order_relaxed);
      if (i >= items) break;
      if (i < a_items) {
        pack_a_block(i);
        a_packed.fetch_add(1, std::memory_order_release);
        continue;
      }
      i -= a_items;
      if (i < stripe_items) {
        pack_stripe(i);
#if defined(POLYTUNE_PACK_AVX512)
        _mm_sfence();  // the streamed lines are visible before the stripe counts as packed
#endif
        stripes_packed.fetch_add(1, std::memory_order_release);
        continue;
      }
      i -= stripe_items;
      const int64_t ch = i / (packs + per_chunk), j = i % (packs + per_chunk), jc = ch * nc;
      const int64_t npan = ceil_div(std::min(nc, N - jc), NR);
      P* const bchunk = chunk_b(ch);
      if (j < packs) {
        if (!cached && ch >= ring) wait_until(done[ch - ring], per_chunk);
        pack_item(jc, bchunk, npan, j);
        packed[ch].fetch_add(1, std::memory_order_release);
        continue;
      }
      const int64_t splits = std::min(col_splits, npan);
      const int64_t task = j - packs;
      if (task % col_splits < splits) {
        if (packs) wait_until(packed[ch], packs);
        if (stripe_items) wait_until(stripes_packed, stripe_items);
        if (a_items) wait_until(a_packed, a_items);
        task_body(jc, bchunk, npan, splits, (task / col_splits) * splits + task % col_splits);
      }
      done[ch].fetch_add(1, std::memory_order_release);
    }
    Path::end();
  }
  if (fill) pack_cache_ready(cached);
}

void check_ld(const char* name, int64_t ld, int64_t rows, int64_t cols, bool trans) {
  // Stored shape is rows×cols (already transposed back to memory order).
  if (ld < cols || ld < 0)
    throw OpError(std::string("gemm: ") + name + " is stored " + std::to_string(rows) + "x" +
                  std::to_string(cols) + (trans ? " (transposed)" : "") + " but its leading dimension " +
                  std::to_string(ld) + " is smaller than " + std::to_string(cols));
}

}  // namespace gemm_detail

bool gemm_xwt_in_place(DType dt) {
#if defined(POLYTUNE_GEMM_DIRECT)
  const char* v = std::getenv("POLYTUNE_GEMM_DIRECT");
  if (v && std::string(v) == "0") return false;
  if (dt == DType::F32) return true;
#if defined(__AVX512BF16__)
#if defined(POLYTUNE_GEMM_AMX)
  return dt == DType::BF16 && !gemm_detail::amx_available();
#else
  return dt == DType::BF16;
#endif
#endif
#endif
  return false;
}

void gemm(DType dt, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const void* A,
          int64_t lda, const void* B, int64_t ldb, void* C, int64_t ldc, bool accumulate, const PackKey* bkey) {
  using namespace gemm_detail;
  if (dt != DType::BF16 && dt != DType::F32)
    throw OpError(std::string("gemm: dtype ") + dtype_name(dt) + " is not supported (bf16 or f32)");
  if (M < 0 || N < 0 || K < 0)
    throw OpError("gemm: negative size M=" + std::to_string(M) + " N=" + std::to_string(N) +
                  " K=" + std::to_string(K));
  check_ld("A", lda, transA ? K : M, transA ? M : K, transA);
  check_ld("B", ldb, transB ? N : K, transB ? K : N, transB);
  check_ld("C", ldc, M, N, false);
  if (M == 0 || N == 0) return;
  if (!C || (K > 0 && (!A || !B))) throw OpError("gemm: null data pointer");
  if (K == 0) {
    if (!accumulate)
      for (int64_t r = 0; r < M; r++)
        std::memset(static_cast<char*>(C) + r * ldc * dtype_size(dt), 0, size_t(N) * dtype_size(dt));
    return;
  }
  // Decoding's x·Wᵀ with a few rows: stream the weights once, no packing.
  if (!transA && transB && M <= kSmallM && gemm_small_m(dt, M, N, K, A, lda, B, ldb, C, ldc, accumulate)) return;
#if defined(POLYTUNE_GEMM_DIRECT)
  // x·Wᵀ as Cᵀ = W·xᵀ: W, the large operand, is the broadcast one and is read where it lies, so
  // only x is packed. Packing W is a transpose, and it stood alone between the kernels: the packed
  // path ran at 0.92-0.97x of this one on the 7B shapes (one thread, CPU time, W packed each call).
  // The pair kernel reads W's (k, k+1) as one 32-bit word, so K and W's row stride must be even
  // (a row starts on a pair and ends with one). POLYTUNE_GEMM_DIRECT=0 takes the packed path (the tests' knob: both give the same
  // bits). W's packing is no longer cached for x·Wᵀ: there is none.
  if (!transA && transB && gemm_xwt_in_place(dt)) {
    if (dt == DType::F32) {
      run<PathF32Direct>(false, true, N, M, K, static_cast<const float*>(B), ldb, static_cast<const float*>(A), lda,
                         static_cast<float*>(C), ldc, accumulate, nullptr);
      return;
    }
#if defined(__AVX512BF16__)
    if (K % 2 == 0 && ldb % 2 == 0) {
      run<PathPairDirect>(false, true, N, M, K, static_cast<const bf16*>(B), ldb, static_cast<const bf16*>(A), lda,
                          static_cast<bf16*>(C), ldc, accumulate, nullptr);
      return;
    }
#endif
  }
#endif
  if (dt == DType::F32) {
    run<PathF32>(transA, transB, M, N, K, static_cast<const float*>(A), lda, static_cast<const float*>(B),
                 ldb, static_cast<float*>(C), ldc, accumulate, bkey);
    return;
  }
#if defined(POLYTUNE_GEMM_AMX)
  if (amx_available()) {
    run<PathAmx>(transA, transB, M, N, K, static_cast<const bf16*>(A), lda, static_cast<const bf16*>(B), ldb,
                 static_cast<bf16*>(C), ldc, accumulate, bkey);
    return;
  }
#endif
#if defined(__AVX512BF16__)
  run<PathPair>(transA, transB, M, N, K, static_cast<const bf16*>(A), lda, static_cast<const bf16*>(B), ldb,
                static_cast<bf16*>(C), ldc, accumulate, bkey);
#else
  run<PathF32>(transA, transB, M, N, K, static_cast<const bf16*>(A), lda, static_cast<const bf16*>(B), ldb,
               static_cast<bf16*>(C), ldc, accumulate, bkey);
#endif
}

}  // namespace pt
