#include "tensor.h"

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cpu/pack_cache.h"
#include "env.h"
#ifdef POLYTUNE_HAS_CUDA
#include "cuda/api.h"
#endif

namespace pt {

std::atomic<int64_t> MemoryStats::live_buffers{0};
std::atomic<int64_t> MemoryStats::live_bytes{0};

static std::atomic<uint64_t> next_storage_id{1};

// 64-byte alignment keeps AVX-512 loads of whole rows aligned. A buffer of 8 MiB or more (a 7B
// layer's weights, the logits of a batch) is a "large" one: it starts on a 2 MiB boundary, its size
// rounded up to whole 2 MiB, and asks for transparent huge pages, which Debian's kernel grants only
// on request ("madvise"). Packing W for dY·W reads it two rows at a time, each row on its own 4 KiB
// page: 8.7 ms a call on small pages against 5.2 on huge ones (7B q_proj, bf16, one thread; the
// whole call 3.5% faster). POLYTUNE_HUGE_PAGES=0 asks for none.
//
// A freed large buffer is kept for the next request of its size (the next step's activations, the
// next attention's output): fresh memory costs a page fault and the kernel's zeroing of every page,
// about 4% of a bf16 attention forward at the bench shape, whose output was new memory on every
// call. Bounded by POLYTUNE_HOST_CACHE_MB (default 1024; 0 keeps none), oldest freed first out, and
// given back to the system before an allocation is declared failed.
namespace {
constexpr size_t kHuge = size_t(2) << 20, kLarge = 4 * kHuge;

bool env_is_zero(const char* name) {
  const char* v = std::getenv(name);
  return v && std::string(v) == "0";
}

class HostCache {
 public:
  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = kept_.begin(); it != kept_.end(); ++it)
      if (it->first == bytes) {
        void* p = it->second;
        kept_.erase(it);
        bytes_ -= bytes;
        hits_++;
        return p;
      }
    return nullptr;
  }
  void give(void* p, size_t bytes) {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      kept_.emplace_back(bytes, p);
      bytes_ += bytes;
      while (bytes_ > limit_) {
        drop.push_back(kept_.front().second);
        bytes_ -= kept_.front().first;
        kept_.pop_front();
      }
    }
    for (void* q : drop) std::free(q);
  }
  // Frees every kept buffer; false if there was none.
  bool drain() {
    std::deque<std::pair<size_t, void*>> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      all.swap(kept_);
      bytes_ = 0;
    }
    for (auto& e : all) std::free(e.second);
    return !all.empty();
  }
  HostCacheStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {int64_t(kept_.size()), int64_t(bytes_), hits_, int64_t(limit_)};
  }

 private:
  std::mutex mu_;
  std::deque<std::pair<size_t, void*>> kept_;
  size_t bytes_ = 0;
  int64_t hits_ = 0;
  const size_t limit_ = [] {
    return size_t(env_number("POLYTUNE_HOST_CACHE_MB", 1024.0)) << 20;
  }();
};
// Never destroyed: tensors freed during exit may still return buffers to it.
HostCache& host_cache() {
  static HostCache* c = new HostCache;
  return *c;
}

size_t host_bytes(size_t n) { return n >= kLarge ? (n + kHuge - 1) / kHuge * kHuge : ((n + 63) / 64) * 64; }

void* host_alloc(size_t n) {
  const size_t bytes = host_bytes(n);
  if (n < kLarge) {
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }
  if (void* p = host_cache().take(bytes)) return p;
  static const bool huge_pages = !env_is_zero("POLYTUNE_HUGE_PAGES");
  void* p = std::aligned_alloc(kHuge, bytes);
  if (!p && host_cache().drain()) p = std::aligned_alloc(kHuge, bytes);
  if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge_pages) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: a refusal changes nothing
#endif
  return p;
}

void host_free(void* p, size_t n) {
  if (n >= kLarge) host_cache().give(p, host_bytes(n));
  else std::free(p);
}
}  // namespace

HostCacheStats host_cache_stats() { return host_cache().stats(); }

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
    host_free(ptr, nbytes);
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
