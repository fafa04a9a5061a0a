// Packed weights kept across GEMM calls while they do not change.
//
// A Storage carries a unique id (never reused) and a version that every op bumps for each tensor it
// may write (the bindings bump it for every tensor argument except the ones declared read-only,
// writeBytes bumps it, and a storage whose memory was handed to JS as a Buffer is never cached).
// The GEMM driver packs op(B) for a (storage id, version, offset, layout) only from its second use
// on (an activation, written before each use, is never cached); later calls with the same key skip
// packing. Bounded: least recently used entries go beyond POLYTUNE_PACK_CACHE_MB (default 256; 0
// turns the cache off), and entries die with their storage or at its next version.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace pt {

struct PackKey {
  uint64_t storage_id = 0;
  uint64_t version = 0;
  size_t byte_offset = 0;
};

struct PackedB {
  void* data = nullptr;
  size_t bytes = 0;
  bool ready = false;  // filled; until then no other caller may use it
  ~PackedB();
};

// The cached packing for `key` and `layout` (a description of the packed format: dtype, path,
// transposition, sizes), or a fresh buffer of `bytes` to fill (then *fill is true and the caller
// calls pack_cache_ready after filling it), or null: not cached (first sighting, disabled, too big).
std::shared_ptr<PackedB> pack_cache_get(const PackKey& key, const char* layout, size_t bytes, bool* fill);
void pack_cache_ready(const std::shared_ptr<PackedB>& p);
// Drops every entry of a storage (called when the storage is freed).
void pack_cache_forget(uint64_t storage_id);

struct PackCacheStats {
  int64_t entries, bytes, hits, fills, limit_bytes;
  int64_t spares, spare_bytes, reuses;  // buffers of dropped entries kept for the next fill (pack_cache.cc)
};
PackCacheStats pack_cache_stats();

}  // namespace pt
