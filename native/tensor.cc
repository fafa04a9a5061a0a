#include "tensor.h"

#include <cstdlib>
#include <new>
#include <string>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cpu/pack_cache.h"
#ifdef POLYTUNE_HAS_CUDA
#include "cuda/api.h"
#endif

namespace pt {

std::atomic<int64_t> MemoryStats::live_buffers{0};
std::atomic<int64_t> MemoryStats::live_bytes{0};

static std::atomic<uint64_t> next_storage_id{1};

// 64-byte alignment keeps AVX-512 loads of whole rows aligned. A buffer of 8 MiB or more (a 7B
// layer's weights, the logits of a batch) also starts on a 2 MiB boundary and asks for transparent
// huge pages, which Debian's kernel grants only on request ("madvise"). Packing W for dY·W reads
// it two rows at a time, each row on its own 4 KiB page: 8.7 ms a call on small pages against 5.2
// on huge ones (7B q_proj, bf16, one thread; the whole call 3.5% faster). POLYTUNE_HUGE_PAGES=0
// asks for none.
static void* host_alloc(size_t n) {
  constexpr size_t huge = size_t(2) << 20;
  const size_t rounded = ((n + 63) / 64) * 64;
  static const bool refused = [] {
    const char* v = std::getenv("POLYTUNE_HUGE_PAGES");
    return v && std::string(v) == "0";
  }();
  void* p = nullptr;
  if (n >= 4 * huge && !refused) {
    if (posix_memalign(&p, huge, rounded) != 0) p = nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: a refusal changes nothing
#endif
  } else {
    p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  }
  if (!p) throw std::bad_alloc();
  return p;
}

Storage::Storage(size_t n, Device d) : nbytes(n), device(d), id(next_storage_id.fetch_add(1)) {
  if (d.kind == Device::CUDA) {
#ifdef POLYTUNE_HAS_CUDA
    // Never zero bytes: a null pointer would read as "no storage" in messages and checks.
    ptr = cuda::alloc(cuda::context(d.index), n == 0 ? 64 : n, "tensor");
#else
    throw OpError(not_built_with_cuda("allocating on " + d.name()));
#endif
  } else {
    ptr = host_alloc(n);
  }
  MemoryStats::live_buffers++;
  MemoryStats::live_bytes += int64_t(n);
}

Storage::~Storage() {
  pack_cache_forget(id);
  if (device.kind == Device::CUDA) {
#ifdef POLYTUNE_HAS_CUDA
    // Stream-ordered: safe while kernels still run. A destructor must not throw: on a device lost
    // to an earlier fault the memory is gone with the context anyway.
    try {
      cuda::free(cuda::context(device.index), ptr);
    } catch (...) {
    }
#endif
  } else {
    std::free(ptr);
  }
  MemoryStats::live_buffers--;
  MemoryStats::live_bytes -= int64_t(nbytes);
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string Tensor::describe() const { return std::string(dtype_name(dtype)) + shape_str(shape); }

}  // namespace pt
