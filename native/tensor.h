// Native tensor storage: contiguous row-major buffers with views that share them.
#pragma once
#include <atomic>
#include <memory>
#include <vector>

#include "common.h"

namespace pt {

enum class Device : int { CPU = 0, CUDA = 1 };

// Counts live allocations so tests can prove a training loop frees what it makes.
struct MemoryStats {
  static std::atomic<int64_t> live_buffers;
  static std::atomic<int64_t> live_bytes;
};

struct Storage {
  void* ptr = nullptr;
  size_t nbytes = 0;
  Device device = Device::CPU;
  // For caches of derived data (packed GEMM weights): a process-unique id, never reused, and a
  // version bumped whenever anything may write the memory. `exposed` is set once JS holds a Buffer
  // over the memory, after which writes are invisible to us and nothing derived may be cached.
  const uint64_t id;
  std::atomic<uint64_t> version{0};
  std::atomic<bool> exposed{false};
  void mark_written() { version.fetch_add(1, std::memory_order_relaxed); }
  explicit Storage(size_t n);
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
  Device device() const { return storage ? storage->device : Device::CPU; }
  std::string describe() const;  // e.g. "bf16[2, 3]"
};

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace pt
