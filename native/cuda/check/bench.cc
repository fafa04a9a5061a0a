// polytune_cuda_check --bench: our kernels at the shapes ../shared/device/peers.py measures PyTorch on,
// timed with CUDA events on the context's stream (median of the repetitions), written as JSON so the
// device check can table each figure beside the peer's from the same call. Correct-first kernels: the
// attention figures are expected far below the peer's until the next issue's tensor-core version.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

#include "cuda/check/bench.h"
#include "cuda/check/harness.h"
#include "cuda/context.h"

namespace check {

namespace cu = pt::cuda;

static double median_ms(cu::Context& c, int warmup, int reps, const std::function<void()>& f) {
  for (int i = 0; i < warmup; i++) f();
  cudaEvent_t a, b;
  PT_CUDA_CHECK(cudaEventCreate(&a));
  PT_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int i = 0; i < reps; i++) {
    PT_CUDA_CHECK(cudaEventRecord(a, c.stream));
    f();
    PT_CUDA_CHECK(cudaEventRecord(b, c.stream));
    PT_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    PT_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// A device buffer of random-ish bf16/f32 values without a host copy of gigabytes: a small random
// block tiled by device copies (the values only need to be finite and varied).
static void* device_random(cu::Context& c, DType dt, int64_t n) {
  const int64_t block = std::min<int64_t>(n, 1 << 20);
  Host h = uniform(dt, block);
  const size_t es = pt::dtype_size(dt);
  char* p = (char*)cu::alloc(c, size_t(n) * es, "bench buffer");
  for (int64_t i = 0; i < n; i += block)
    PT_CUDA_CHECK(cudaMemcpyAsync(p + i * es, h.data(), size_t(std::min(block, n - i)) * es, cudaMemcpyHostToDevice, c.stream));
  PT_CUDA_CHECK(cudaStreamSynchronize(c.stream));
  return p;
}

int run_bench(cu::Context& c, const char* path) {
  FILE* f = std::fopen(path, "w");
  if (!f) {
    std::perror(path);
    return 1;
  }
  std::fprintf(f, "{\n");
  if (cu::has_gemm()) {
    const int64_t T = 16384;
    struct G { const char* name; int64_t m, k, n; };
    const G shapes[] = {{"8192^3", 8192, 8192, 8192}, {"qkv", T, 4096, 12288}, {"o", T, 4096, 4096},
                        {"gate_up", T, 4096, 22016}, {"down", T, 11008, 4096}, {"lm_head_32k", T, 4096, 32000},
                        {"lm_head_250k", T, 4096, 250680}};
    std::fprintf(f, " \"gemm_TFLOPs\": {");
    bool first = true;
    for (const G& g : shapes) {
      void* A = device_random(c, DType::BF16, g.m * g.k);
      void* B = device_random(c, DType::BF16, g.k * g.n);
      void* C = cu::alloc(c, size_t(g.m * g.n) * 2, "bench C");
      const double ms = median_ms(c, 5, 30, [&] { cu::gemm(c, DType::BF16, false, false, g.m, g.n, g.k, A, g.k, B, g.n, C, g.n, false); });
      const double tf = 2.0 * g.m * g.k * g.n / (ms * 1e-3) / 1e12;
      std::printf("bench gemm %-12s %8.3f ms %7.1f TFLOP/s\n", g.name, ms, tf);
      std::fprintf(f, "%s\"%s\": %.1f", first ? "" : ", ", g.name, tf);
      first = false;
      cu::free(c, A), cu::free(c, B), cu::free(c, C);
    }
    std::fprintf(f, "},\n");
  }
  {
    // peers.py attn: causal, hd 128, H 32, B 8 x S 2048 (here 8 documents of 2048 in one packed row)
    const int64_t B = 8, S = 2048, H = 32, D = 128, T = B * S;
    std::vector<int32_t> cus(B + 1);
    for (int64_t b = 0; b <= B; b++) cus[b] = int32_t(b * S);
    int32_t* dcu = (int32_t*)cu::alloc(c, cus.size() * 4, "bench cu_seqlens");
    cu::copy_to_device(c, dcu, cus.data(), cus.size() * 4);
    void *q = device_random(c, DType::BF16, T * H * D), *k = device_random(c, DType::BF16, T * H * D),
         *v = device_random(c, DType::BF16, T * H * D), *dout = device_random(c, DType::BF16, T * H * D);
    void *o = cu::alloc(c, size_t(T * H * D) * 2, "o"), *dq = cu::alloc(c, size_t(T * H * D) * 2, "dq"),
         *dk = cu::alloc(c, size_t(T * H * D) * 2, "dk"), *dv = cu::alloc(c, size_t(T * H * D) * 2, "dv");
    float* lse = (float*)cu::alloc(c, size_t(H * T) * 4, "lse");
    const double fl = 4.0 * B * H * S * S * D / 2;
    const double ms_f = median_ms(c, 2, 10, [&] {
      cu::attention_forward(c, DType::BF16, T, B, S, H, H, D, 0.f, dcu, q, k, v, o, lse);
    });
    const double ms_b = median_ms(c, 2, 10, [&] {
      cu::attention_backward(c, DType::BF16, T, B, S, H, H, D, 0.f, dcu, q, k, v, o, dout, lse, dq, dk, dv);
    });
    std::printf("bench attention S2048   fwd %8.3f ms %6.1f TFLOP/s, bwd %8.3f ms %6.1f TFLOP/s\n", ms_f,
                fl / (ms_f * 1e-3) / 1e12, ms_b, 2.5 * fl / (ms_b * 1e-3) / 1e12);
    std::fprintf(f, " \"attn_causal_h128_S2048\": {\"fwd_TFLOPs\": %.1f, \"bwd_TFLOPs\": %.1f},\n",
                 fl / (ms_f * 1e-3) / 1e12, 2.5 * fl / (ms_b * 1e-3) / 1e12);
    for (void* p : {(void*)dcu, q, k, v, dout, o, dq, dk, dv, (void*)lse}) cu::free(c, p);
  }
  {
    // peers.py adamw: fp32 params, grads and moments, 28 bytes per parameter (param aliases master)
    const int64_t n = int64_t(1) << 28;
    float* p = (float*)device_random(c, DType::F32, n);
    void* g = device_random(c, DType::F32, n);
    float* m = (float*)device_random(c, DType::F32, n);
    float* v = (float*)device_random(c, DType::F32, n);
    PT_CUDA_CHECK(cudaMemsetAsync(v, 0, size_t(n) * 4, c.stream));
    cu::AdamWArgs a{1e-5f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1.f, nullptr};
    const double ms = median_ms(c, 3, 20, [&] { cu::adamw_step(c, DType::F32, n, p, g, p, m, v, a); });
    std::printf("bench adamw f32 2^28    %8.3f ms = %.2f ms per 1e9 params, %.0f GB/s at 28 B/param\n", ms,
                ms * 1e9 / double(n), 28.0 * n / (ms * 1e-3) / 1e9);
    std::fprintf(f, " \"adamw_fp32\": {\"ms_per_1e9_params\": %.2f, \"GBps_at_28B_per_param\": %.0f},\n",
                 ms * 1e9 / double(n), 28.0 * n / (ms * 1e-3) / 1e9);
    for (void* q : {(void*)p, g, (void*)m, (void*)v}) cu::free(c, q);
  }
  std::fprintf(f, " \"device\": %d\n}\n", c.device);
  std::fclose(f);
  return 0;
}

}  // namespace check
