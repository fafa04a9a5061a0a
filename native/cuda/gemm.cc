// Matrix multiply through cuBLASLt, the contract of native/cpu/gemm.h: C (+)= op(A)·op(B), row-major,
// bf16 or f32 in, fp32 accumulate (CUBLAS_COMPUTE_32F: no TF32 for f32, which must match the CPU to
// ~1e-6), C rounded once; accumulate is beta = 1, so the old C joins in fp32 before that rounding,
// exactly the CPU's `dW += dYᵀ·X`. Compiled only where cublasLt.h exists (CMake's full mode).
//
// cuBLASLt is column-major. A row-major R×C matrix with leading dimension ld is the column-major C×R
// matrix with the same ld, so row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: we pass B
// as cuBLASLt's first operand and A as its second, each with its own transpose flag unchanged.
#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "cuda/context.h"

namespace pt::cuda {

namespace {

constexpr size_t kWorkspace = 32u << 20;  // NVIDIA's recommendation for Hopper

void check_lt(cublasStatus_t st, const char* api, Context& ctx, int line) {
  if (st == CUBLAS_STATUS_SUCCESS) return;
  throw CudaError(api, cublasLtGetStatusName(st), std::string(__FILE__) + ":" + std::to_string(line), false,
                  "cuda:" + std::to_string(ctx.device) + ": " + api + " failed: " + cublasLtGetStatusName(st) +
                      " (" + cublasLtGetStatusString(st) + ")");
}
#define PT_LT(ctx, expr) check_lt((expr), #expr, (ctx), __LINE__)

// Row-major rows×cols with leading dimension ld, as cuBLASLt's column-major layout.
struct Layout {
  cublasLtMatrixLayout_t h = nullptr;
  Layout(Context& ctx, cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld) {
    PT_LT(ctx, cublasLtMatrixLayoutCreate(&h, t, uint64_t(cols), uint64_t(rows), ld));
  }
  ~Layout() { if (h) cublasLtMatrixLayoutDestroy(h); }
};

struct Desc {
  cublasLtMatmulDesc_t h = nullptr;
  Desc(Context& ctx, bool ta, bool tb) {
    PT_LT(ctx, cublasLtMatmulDescCreate(&h, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t a = ta ? CUBLAS_OP_T : CUBLAS_OP_N, b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    PT_LT(ctx, cublasLtMatmulDescSetAttribute(h, CUBLASLT_MATMUL_DESC_TRANSA, &a, sizeof a));
    PT_LT(ctx, cublasLtMatmulDescSetAttribute(h, CUBLASLT_MATMUL_DESC_TRANSB, &b, sizeof b));
  }
  ~Desc() { if (h) cublasLtMatmulDescDestroy(h); }
};

// The heuristic's choice depends only on the problem, so it is looked up once per shape: training
// repeats a handful of shapes millions of times.
// The pointers' alignments are part of the key: parameters and logit chunks are views into larger
// buffers, and an algorithm picked for 256-byte-aligned operands may not run on a view's offset.
using Key = std::tuple<int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, uint32_t>;
std::mutex algo_mu;
std::map<Key, cublasLtMatmulAlgo_t> algos;

// The largest power of two (up to 256, cuBLASLt's default assumption) dividing the address.
uint32_t alignment(const void* p) {
  const uintptr_t a = uintptr_t(p);
  uint32_t al = 256;
  while (al > 1 && a % al != 0) al >>= 1;
  return al;
}

void ensure_handle(Context& ctx) {
  if (ctx.lt_handle) return;
  cublasLtHandle_t h;
  PT_LT(ctx, cublasLtCreate(&h));
  ctx.lt_handle = h;
  ctx.workspace = alloc(ctx, kWorkspace, "cuBLASLt workspace");
  ctx.workspace_bytes = kWorkspace;
}

}  // namespace

bool has_gemm() { return true; }

void gemm(Context& ctx, DType dt, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const void* A,
          int64_t lda, const void* B, int64_t ldb, void* C, int64_t ldc, bool accumulate) {
  enter(ctx, "gemm");
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: C = 0, or C unchanged when accumulating (as the CPU)
    if (!accumulate)
      for (int64_t r = 0; r < M; r++)
        PT_CUDA_CHECK_CTX(ctx, cudaMemsetAsync((char*)C + r * ldc * dtype_size(dt), 0, N * dtype_size(dt), ctx.stream));
    return;
  }
  ensure_handle(ctx);
  const cudaDataType_t t = dt == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  // cuBLASLt's first operand is our B: op(B)ᵀ is N×K. Stored row-major as K×N (or N×K when transB).
  Layout lb(ctx, t, transB ? N : K, transB ? K : N, ldb);
  Layout la(ctx, t, transA ? K : M, transA ? M : K, lda);
  Layout lc(ctx, t, M, N, ldc);
  Desc desc(ctx, transB, transA);
  // cuBLASLt's A is our B and its B our A (see the top of this file); C and D are both our C.
  const uint32_t al_a = alignment(B), al_b = alignment(A), al_c = alignment(C);
  const Key key{ctx.device, int(dt), transA, transB, M, N, K, lda, ldb, ldc, accumulate,
                al_a | (al_b << 9) | (al_c << 18)};
  cublasLtMatmulAlgo_t algo;
  {
    std::lock_guard<std::mutex> lock(algo_mu);
    auto it = algos.find(key);
    if (it != algos.end()) {
      algo = it->second;
    } else {
      cublasLtMatmulPreference_t pref;
      PT_LT(ctx, cublasLtMatmulPreferenceCreate(&pref));
      size_t ws = ctx.workspace_bytes;
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a);
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b);
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof al_c);
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof al_c);
      cublasLtMatmulHeuristicResult_t res{};
      int found = 0;
      const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)ctx.lt_handle, desc.h, lb.h, la.h,
                                                               lc.h, lc.h, pref, 1, &res, &found);
      cublasLtMatmulPreferenceDestroy(pref);
      PT_LT(ctx, st);
      if (found == 0)
        throw OpError("gemm: cuBLASLt has no algorithm for " + std::string(dtype_name(dt)) + " M=" +
                      std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
                      " (leading dimensions " + std::to_string(lda) + ", " + std::to_string(ldb) + ", " +
                      std::to_string(ldc) + ")");
      algo = res.algo;
      algos.emplace(key, algo);
    }
  }
  const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
  PT_LT(ctx, cublasLtMatmul((cublasLtHandle_t)ctx.lt_handle, desc.h, &alpha, B, lb.h, A, la.h, &beta, C, lc.h, C,
                            lc.h, &algo, ctx.workspace, ctx.workspace_bytes, ctx.stream));
  PT_LAUNCH_CHECK(ctx, "gemm");
}

}  // namespace pt::cuda
