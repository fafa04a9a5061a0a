// oneDNN matmul peer for `polytune bench ops`: the bench compiles it with g++ against the
// system's libdnnl when present. Line protocol on stdin/stdout, so the bench can interleave it
// with our kernel: each input line "dtype M N K transA transB iters" (dtype bf16|f32) answers
// one line "ok <median ms>" (or "error <message>"); a trailing " cpu" on the request times each
// execution by the process's CPU time instead of the wall clock (the figure that survives a
// loaded machine when both sides run on one thread). Primitives are cached per shape, so setup
// is never timed. C = op(A)·op(B) with A [M,K] (stored [K,M] when transA), B [K,N] (stored [N,K]
// when transB), C [M,N] in the same dtype, fp32 accumulation: the same contract as pt::gemm.
// The operands live in memory allocated as polytune allocates a tensor (native/tensor.cc: from 8 MiB
// on, 2 MiB aligned with transparent huge pages requested), so both sides read the same kind of
// pages and the ratio compares the libraries, not the allocators.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <sys/mman.h>

#include "dnnl.hpp"

using namespace dnnl;

struct Buffer {
  void* p = nullptr;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  explicit Buffer(size_t n) {
    constexpr size_t huge = size_t(2) << 20;
    const bool big = n >= 4 * huge && !(std::getenv("POLYTUNE_HUGE_PAGES") && std::string(std::getenv("POLYTUNE_HUGE_PAGES")) == "0");
    if (posix_memalign(&p, big ? huge : 64, (n + 63) / 64 * 64) != 0) throw std::bad_alloc();
    if (big) madvise(p, n, MADV_HUGEPAGE);
  }
  ~Buffer() { std::free(p); }
};

struct Case {
  matmul prim;
  Buffer abuf, bbuf, cbuf;
  memory a, b, c;
};

int main() {
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  std::map<std::string, std::unique_ptr<Case>> cache;
  std::string line;
  std::printf("ready %d.%d.%d\n", dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch);
  std::fflush(stdout);
  while (std::getline(std::cin, line)) {
    try {
      std::istringstream in(line);
      std::string dt;
      long M, N, K, iters;
      int ta, tb;
      if (!(in >> dt >> M >> N >> K >> ta >> tb >> iters)) throw std::runtime_error("bad request: " + line);
      std::string clock;
      const bool cpu = (in >> clock) && clock == "cpu";
      const auto type = dt == "bf16" ? memory::data_type::bf16 : memory::data_type::f32;
      const std::string key = dt + " " + std::to_string(M) + " " + std::to_string(N) + " " + std::to_string(K) + " " +
                              std::to_string(ta) + std::to_string(tb);
      auto& slot = cache[key];
      if (!slot) {
        memory::desc ad({M, K}, type, ta ? memory::format_tag::ba : memory::format_tag::ab);
        memory::desc bd({K, N}, type, tb ? memory::format_tag::ba : memory::format_tag::ab);
        memory::desc cd({M, N}, type, memory::format_tag::ab);
        auto pd = matmul::primitive_desc(matmul::desc(ad, bd, cd), eng);
        slot.reset(new Case{matmul(pd), Buffer(ad.get_size()), Buffer(bd.get_size()), Buffer(cd.get_size()), {}, {}, {}});
        slot->a = memory(ad, eng, slot->abuf.p);
        slot->b = memory(bd, eng, slot->bbuf.p);
        slot->c = memory(cd, eng, slot->cbuf.p);
        // Small non-zero inputs (bf16 1.0 / f32 0.5), so no denormal or NaN path is timed.
        for (memory* m : {&slot->a, &slot->b}) {
          const size_t n = m->get_desc().get_size();
          auto* p = static_cast<unsigned char*>(m->get_data_handle());
          if (type == memory::data_type::bf16)
            for (size_t i = 0; i + 1 < n; i += 2) { p[i] = 0x80; p[i + 1] = 0x3f; }
          else
            for (size_t i = 0; i + 3 < n; i += 4) { float f = 0.5f; std::copy((unsigned char*)&f, (unsigned char*)&f + 4, p + i); }
        }
      }
      Case& c = *slot;
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, c.a}, {DNNL_ARG_WEIGHTS, c.b}, {DNNL_ARG_DST, c.c}};
      c.prim.execute(strm, args);  // warm-up
      strm.wait();
      std::vector<double> ms;
      auto cpu_ms = [] {
        timespec t;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
      };
      for (long i = 0; i < std::max(1L, iters); i++) {
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu ? cpu_ms() : 0;
        c.prim.execute(strm, args);
        strm.wait();
        ms.push_back(cpu ? cpu_ms() - c0 : std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      std::printf("ok %.6f\n", ms[ms.size() / 2]);
    } catch (const std::exception& e) {
      std::printf("error %s\n", e.what());
    }
    std::fflush(stdout);
  }
  return 0;
}
