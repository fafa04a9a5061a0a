// The CUDA backend as the op layer sees it: a device context, memory, and one pointer-level launcher
// per kernel. Declarations only, no CUDA headers, so native/ops/*.cc (the op layer, whose CUDA arms
// call these) compile with g++ alone. Launchers trust their arguments (the op layer checks shapes,
// dtypes and devices once, for both backends), enqueue on the context's stream and return without
// waiting; each contract is its CPU twin's in native/cpu/*.h unless a comment here says otherwise.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "cuda/errors.h"

namespace pt::cuda {

struct Context;  // one per device: stream, memory pool, cuBLASLt handle + workspace, status word

// Devices this process can use: 0 without a driver or a GPU (never throws), so a CUDA build loads and
// runs CPU work on a machine without a GPU.
int device_count();
// The device's context, created on first use. Throws CudaError if the device is lost (an earlier
// sticky fault) or cannot be initialised.
Context& context(int device);
int device_of(const Context&);
// Waits for the stream; `what` names the sync point in the error if queued work faulted.
void synchronize(Context&, const char* what);

// ---- memory (allocator.cc): stream-ordered, cached by the driver's pool
void* alloc(Context&, size_t bytes, const char* what);  // OutOfMemory after one trim-and-retry
void free(Context&, void* p);                           // stream-ordered: safe while kernels run
void trim(Context&);                                    // returns cached memory to the driver
struct MemoryStats {
  size_t live;       // bytes in allocations not yet freed
  size_t peak;       // highest `live` since the context was created (or reset_peak)
  size_t reserved;   // bytes the pool holds from the driver (live + cached)
  size_t total;      // device memory
  size_t free;       // free device memory as the driver sees it
  int64_t allocations;  // live allocation count
};
MemoryStats memory_stats(Context&);
void reset_peak(Context&);
// Synchronous copies (the host side is pageable memory); copy_to_host is a sync point.
void copy_to_device(Context&, void* dst, const void* src, size_t bytes);
void copy_to_host(Context&, void* dst, const void* src, size_t bytes);
// Within one device, stream-ordered: no sync.
void copy_on_device(Context&, void* dst, const void* src, size_t bytes);
void memset_async(Context&, void* dst, int byte, size_t bytes);

// ---- the status word: kernels that meet data the host should have rejected (an id >= V) clamp it
// and set a bit here instead of a device assert, which would poison the context. Read at the step's
// sync point: returns the bits set since the last read, and clears them.
enum StatusBits : uint32_t { kBadTokenId = 1, kBadPosition = 2, kBadTarget = 4 };
uint32_t take_status(Context&);

// ---- kernels (one op family per .cu file)
void embedding_forward(Context&, DType, int64_t N, int64_t V, int64_t C, const int32_t* ids,
                       const void* weight, void* out);
// Deterministic: rows sharing an id are summed in position order in fp32, then added to the table row
// once (a stable radix sort groups them; no float atomics).
void embedding_backward(Context&, DType, int64_t N, int64_t V, int64_t C, const int32_t* ids,
                        const void* dout, void* dweight);

void rmsnorm_forward(Context&, DType, int64_t N, int64_t C, float eps, const void* x, const void* w,
                     void* out, float* rstd);
void rmsnorm_backward(Context&, DType, int64_t N, int64_t C, const void* x, const void* w,
                      const float* rstd, const void* dout, void* dx, void* dw);

void rope_apply(Context&, DType, int64_t N, int64_t H, int64_t D, int64_t P, const int32_t* pos,
                const float* cos, const float* sin, const void* x, void* out, bool inverse);

void swiglu_forward(Context&, DType, int64_t n, const void* gate, const void* up, void* out);
void swiglu_backward(Context&, DType, int64_t n, const void* gate, const void* up, const void* dout,
                     void* dgate, void* dup);

void add(Context&, DType, int64_t n, const void* a, const void* b, void* out);
void cast(Context&, DType src_dt, DType dst_dt, int64_t n, const void* src, void* dst);
void scale(Context&, DType, int64_t n, float s, void* x);
void fill(Context&, DType, int64_t n, double value, void* dst);  // bf16, f32 or i32

// *out (= or +=) sum of x^2 in fp64, by fixed 65536-element blocks then the blocks in order: the same
// value on every run. `out` is a device scalar, so the norm of a whole arena (or two arenas, the second
// with accumulate) costs no host round trip until the step's one read.
void sum_squares(Context&, DType, int64_t n, const void* x, double* out, bool accumulate);
// pair[0] + pair[1] = the same sum as an f32 (hi, lo) pair in device memory: several reductions are
// then read back in one transfer, and hi + lo keeps the fp64 sum to about 2^-48.
void sum_squares_pair(Context&, DType, int64_t n, const void* x, float* pair);
// *scale = max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6) : 1, norm = sqrt(*sumsq): the
// trainer's clipping rule, on the device, feeding adamw_step's grad_scale_dev.
void clip_scale(Context&, const double* sumsq, float max_norm, float* scale);

// logits: [N, V]; targets: [N]. row_loss: [N] f32 receives lse - logit[target] (0 for ignored rows),
// so the loss is read once per micro-batch instead of returned per call. When dlogits is given (it
// may alias logits) it receives grad_scale * (softmax - onehot), zeros for ignored rows. A target
// outside [0, V) that is not ignore_index sets kBadTarget and its row is treated as ignored.
void cross_entropy(Context&, DType, int64_t N, int64_t V, const void* logits, const int32_t* targets,
                   int32_t ignore_index, float* row_loss, void* dlogits, float grad_scale);

struct AdamWArgs {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;                    // 1-based, for bias correction
  float grad_scale;                // multiplies the gradient first
  const float* grad_scale_dev;     // optional device factor (clip_scale), multiplied in as well
};
// Over a flat arena: master, m, v f32 [n]; param [n] bf16 (or f32, may alias master), rewritten from
// the updated master; grad [n] in param's dtype. Weight decay is per call: the model keeps decayed and
// non-decayed parameters in two arenas (norm weights get none), which is one call each.
void adamw_step(Context&, DType, int64_t n, void* param, const void* grad, float* master, float* m,
                float* v, const AdamWArgs&);

// Causal attention over packed variable-length documents, FlashAttention's varlen layout:
// q, out: [total, Hq, D]; k, v: [total, Hkv, D]; cu_seqlens: [docs + 1] int32 on the device,
// cu_seqlens[0] = 0, cu_seqlens[docs] = total, ascending (host-validated); max_seqlen: the longest
// document (host-known). Token r of document d (cu[d] <= r < cu[d+1]) sees keys cu[d]..r. lse: [Hq,
// total] f32, natural log of the scaled scores' sum. The CPU kernel with B = 1, T = total and document
// ids from cu_seqlens is the reference. D is 8, 16, 32, 64 or 128; Hkv divides Hq; scale 0 selects 1/sqrt(D).
void attention_forward(Context&, DType, int64_t total, int64_t docs, int64_t max_seqlen, int64_t Hq,
                       int64_t Hkv, int64_t D, float scale, const int32_t* cu_seqlens, const void* q,
                       const void* k, const void* v, void* out, float* lse);
// dq, dk, dv overwritten; dk/dv summed over the query heads of their group in fp32, rounded once.
void attention_backward(Context&, DType, int64_t total, int64_t docs, int64_t max_seqlen, int64_t Hq,
                        int64_t Hkv, int64_t D, float scale, const int32_t* cu_seqlens, const void* q,
                        const void* k, const void* v, const void* out, const void* dout,
                        const float* lse, void* dq, void* dk, void* dv);

// Incremental decoding over a KV cache, native/cpu/kv_attention.h's contract with its segments
// flattened by the op (host-validated): entries [R, 3] int32 on the device, one per new token, =
// (its row in q / knew / vnew / out, its slot, its position). Appends every entry's knew/vnew row at
// (slot, position) of kcache/vcache [slots, maxLen, Hkv, D], then out row = softmax(q·Kᵀ·scale)·V
// over the slot's keys [0, position], which include the rows this call appended. Rows of q without
// an entry are not written. D is 8, 16, 32, 64 or 128; Hkv divides Hq; scale 0 selects 1/sqrt(D).
void kv_attention(Context&, DType, int64_t R, const int32_t* entries, int64_t maxLen, int64_t Hq, int64_t Hkv,
                  int64_t D, float scale, const void* q, const void* knew, const void* vnew, void* kcache,
                  void* vcache, void* out);

// C (+)= op(A)·op(B), row-major, as native/cpu/gemm.h (bf16 or f32 in, fp32 accumulate, C rounded
// once; accumulate adds the old C in fp32 first). Only in builds with cuBLASLt (gemm.cc).
bool has_gemm();
void gemm(Context&, DType, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const void* A,
          int64_t lda, const void* B, int64_t ldb, void* C, int64_t ldc, bool accumulate);

}  // namespace pt::cuda
