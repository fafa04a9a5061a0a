#include "pack_cache.h"

#include <cstdlib>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "env.h"

namespace pt {

PackedB::~PackedB() { std::free(data); }

namespace {

using Id = std::tuple<uint64_t, size_t, std::string>;  // storage, offset, layout

struct Entry {
  uint64_t version;
  std::shared_ptr<PackedB> packed;  // null: seen once at this version, not packed yet
  std::list<Id>::iterator lru;
};

struct Cache {
  std::mutex mu;
  std::map<Id, Entry> entries;
  std::list<Id> lru;  // most recent first
  size_t bytes = 0;
  int64_t hits = 0, fills = 0;
  size_t limit = [] {
    return size_t(env_number("POLYTUNE_PACK_CACHE_MB", 256.0)) << 20;
  }();

  void erase(std::map<Id, Entry>::iterator it) {
    if (it->second.packed) bytes -= it->second.packed->bytes;
    lru.erase(it->second.lru);
    entries.erase(it);
  }
};

Cache& cache() {
  static Cache c;  // one per process, shared by the addon's instances in worker threads (hence the mutex)
  return c;
}

}  // namespace

std::shared_ptr<PackedB> pack_cache_get(const PackKey& key, const char* layout, size_t bytes, bool* fill) {
  *fill = false;
  Cache& c = cache();
  if (c.limit == 0 || bytes > c.limit || key.storage_id == 0) return nullptr;
  std::lock_guard<std::mutex> lock(c.mu);
  const Id id{key.storage_id, key.byte_offset, layout};
  auto it = c.entries.find(id);
  if (it != c.entries.end() && it->second.version != key.version) {  // written since: stale
    c.erase(it);
    it = c.entries.end();
  }
  if (it == c.entries.end()) {  // first use at this version: remember it, pack into scratch
    c.lru.push_front(id);
    c.entries.emplace(id, Entry{key.version, nullptr, c.lru.begin()});
    return nullptr;
  }
  c.lru.splice(c.lru.begin(), c.lru, it->second.lru);
  if (it->second.packed) {
    if (!it->second.packed->ready) return nullptr;  // another thread is filling it
    c.hits++;
    return it->second.packed;
  }
  // Second use: make room, then hand out a buffer to pack into.
  while (c.bytes + bytes > c.limit) {
    auto victim = c.lru.end();
    for (auto l = c.lru.rbegin(); l != c.lru.rend(); ++l) {
      auto e = c.entries.find(*l);
      if (e->second.packed && !(*l == id)) {
        victim = std::prev(l.base());
        break;
      }
    }
    if (victim == c.lru.end()) return nullptr;
    c.erase(c.entries.find(*victim));
  }
  auto p = std::make_shared<PackedB>();
  p->data = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p->data) return nullptr;
  p->bytes = bytes;
  it->second.packed = p;
  c.bytes += bytes;
  c.fills++;
  *fill = true;
  return p;
}

void pack_cache_ready(const std::shared_ptr<PackedB>& p) {
  std::lock_guard<std::mutex> lock(cache().mu);
  p->ready = true;
}

void pack_cache_forget(uint64_t storage_id) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.entries.lower_bound(Id{storage_id, 0, std::string()});
  while (it != c.entries.end() && std::get<0>(it->first) == storage_id) {
    auto next = std::next(it);
    c.erase(it);
    it = next;
  }
}

PackCacheStats pack_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  int64_t n = 0;
  for (auto& [k, e] : c.entries) n += e.packed ? 1 : 0;
  return {n, int64_t(c.bytes), c.hits, c.fills, int64_t(c.limit)};
}

}  // namespace pt
