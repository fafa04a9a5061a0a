#include "pack_cache.h"

#include <cstdlib>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "env.h"

namespace pt {

namespace {

// The buffers of dropped entries, kept for the next fill of the same size: a weight, or an input
// of several products, is packed again at its next version (every training step), and fresh
// memory costs a page fault and the zeroing of every page. A bf16 step at h512 made 8 fills of 256
// KiB a step, a 7B one 64 of 16 MiB. Bounded by the cache's limit, the oldest freed first out.
struct Spares {
  std::mutex mu;
  std::deque<std::pair<size_t, void*>> kept;
  size_t bytes = 0;
  int64_t reuses = 0;
};
Spares& spares() {
  static Spares* s = new Spares;  // never destroyed: a PackedB may die during exit
  return *s;
}
size_t limit_bytes();

void* spare_take(size_t bytes) {
  Spares& s = spares();
  std::lock_guard<std::mutex> lock(s.mu);
  for (auto it = s.kept.begin(); it != s.kept.end(); ++it)
    if (it->first == bytes) {
      void* p = it->second;
      s.kept.erase(it);
      s.bytes -= bytes;
      s.reuses++;
      return p;
    }
  return nullptr;
}

void spare_give(void* p, size_t bytes) {
  std::vector<void*> drop;
  {
    Spares& s = spares();
    std::lock_guard<std::mutex> lock(s.mu);
    s.kept.emplace_back(bytes, p);
    s.bytes += bytes;
    while (s.bytes > limit_bytes()) {
      drop.push_back(s.kept.front().second);
      s.bytes -= s.kept.front().first;
      s.kept.pop_front();
    }
  }
  for (void* q : drop) std::free(q);
}

size_t rounded(size_t bytes) { return (bytes + 63) / 64 * 64; }

}  // namespace

PackedB::~PackedB() {
  if (data) spare_give(data, rounded(bytes));
}

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

// One per process, shared by the addon's instances in worker threads (hence the mutex), and never
// destroyed: storages freed during exit still call pack_cache_forget, and the entries' buffers go
// to the spares.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}
size_t limit_bytes() { return cache().limit; }

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
  p->data = spare_take(rounded(bytes));
  if (!p->data) p->data = std::aligned_alloc(64, rounded(bytes));
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
  Spares& s = spares();
  std::lock_guard<std::mutex> spare_lock(s.mu);
  return {n, int64_t(c.bytes), c.hits, c.fills, int64_t(c.limit), int64_t(s.kept.size()), int64_t(s.bytes), s.reuses};
}

}  // namespace pt
