// Native tensor storage: contiguous row-major buffers with views that share them.
#pragma once
#include <atomic>
#include <memory>
#include <vector>

#include "common.h"
#include "device.h"

namespace pt {

// Counts live allocations so tests can prove a training loop frees what it makes.
struct MemoryStats {
  static std::atomic<int64_t> live_buffers;
  static std::atomic<int64_t> live_bytes;
};

// Freed host buffers of 8 MiB and more kept for reuse (tensor.cc): how many, their bytes, how many
// requests they served, and the bound.
struct HostCacheStats {
  int64_t entries, bytes, hits, limit_bytes;
};
HostCacheStats host_cache_stats();

// Memory on one device. It is allocated and freed by that device's allocator: aligned_alloc on the
// CPU (large buffers kept for reuse, see tensor.cc), native/cuda/allocator (stream-ordered, cached)
// on a GPU.
struct Storage {
  void* ptr = nullptr;
  size_t nbytes = 0;
  const Device device;
  // For caches of derived data (packed GEMM weights): a process-unique id, never reused, and a
  // version bumped whenever anything may write the memory. While JS holds a live Buffer over the
  // memory (bytesView) writes are invisible to us, so nothing derived may be cached; when the last
  // such view ends (detached by endBytesViews, or collected) the version is bumped once and
  // caching resumes.
  const uint64_t id;
  std::atomic<uint64_t> version{0};
  std::atomic<int64_t> exposed_views{0};
  void mark_written() { version.fetch_add(1, std::memory_order_relaxed); }
  bool exposed() const { return exposed_views.load(std::memory_order_acquire) > 0; }
  explicit Storage(size_t n, Device d = kCpu);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct Tensor {
  std::shared_ptr<Storage> storage;  // null once disposed
  size_t byte_offset = 0;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;

  int64_t numel() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  void* data() const { return static_cast<char*>(storage->ptr) + byte_offset; }
  Device device() const { return storage ? storage->device : kCpu; }
  std::string describe() const;  // e.g. "bf16[2, 3]"
};

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace pt
