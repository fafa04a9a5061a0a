#include "tensor.h"

#include <cstdlib>
#include <new>

#include "cpu/pack_cache.h"
#ifdef POLYTUNE_HAS_CUDA
#include "cuda/api.h"
#endif

namespace pt {

std::atomic<int64_t> MemoryStats::live_buffers{0};
std::atomic<int64_t> MemoryStats::live_bytes{0};

static std::atomic<uint64_t> next_storage_id{1};

Storage::Storage(size_t n, Device d) : nbytes(n), device(d), id(next_storage_id.fetch_add(1)) {
  if (d.kind == Device::CUDA) {
#ifdef POLYTUNE_HAS_CUDA
    // Never zero bytes: a null pointer would read as "no storage" in messages and checks.
    ptr = cuda::alloc(cuda::context(d.index), n == 0 ? 64 : n, "tensor");
#else
    throw OpError(not_built_with_cuda("allocating on " + d.name()));
#endif
  } else {
    // 64-byte alignment keeps AVX-512 loads of whole rows aligned.
    const size_t rounded = ((n + 63) / 64) * 64;
    ptr = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (!ptr) throw std::bad_alloc();
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
