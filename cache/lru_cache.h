// A per-core map from string keys to values with a time to live per entry and a size
// bound: the least recently used entry goes when a new one would exceed it. Not
// thread-safe by design: each shard has its own (shared-nothing), so no locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/node_hash_map.h"
#include "core/intrusive_list.h"

namespace ringproxy {

struct LruStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t expirations = 0;
  uint64_t evictions = 0;
};

template <typename V>
class LruCache {
 public:
  // A capacity of 0 stores nothing (a per-core cache turned off).
  explicit LruCache(size_t capacity) : capacity_(capacity) {}
  ~LruCache() { Clear(); }
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  // The live value for `key`, or nullptr (missing or expired; expired entries go).
  // A hit makes the entry the most recently used. The pointer is valid until the
  // next call that changes the cache.
  const V* Get(std::string_view key, int64_t now_ns) {
    auto it = map_.find(absl::string_view(key.data(), key.size()));
    if (it == map_.end()) {
      ++stats_.misses;
      return nullptr;
    }
    Entry& e = it->second;
    if (now_ns >= e.expires_ns) {
      ++stats_.expirations;
      ++stats_.misses;
      order_.Remove(&e);
      map_.erase(it);
      return nullptr;
    }
    order_.Remove(&e);
    order_.PushBack(&e);
    ++stats_.hits;
    return &e.value;
  }

  // Inserts or replaces; ttl_ns <= 0 stores nothing.
  void Put(std::string_view key, V value, int64_t ttl_ns, int64_t now_ns) {
    if (ttl_ns <= 0 || capacity_ == 0) return;
    auto [it, inserted] = map_.try_emplace(std::string(key));
    Entry& e = it->second;
    if (!inserted) order_.Remove(&e);
    e.key = &it->first;
    e.value = std::move(value);
    e.expires_ns = now_ns + ttl_ns;
    order_.PushBack(&e);
    while (map_.size() > capacity_) {
      Entry* oldest = order_.PopFront();
      ++stats_.evictions;
      map_.erase(absl::string_view(*oldest->key));
    }
  }

  bool Erase(std::string_view key) {
    auto it = map_.find(absl::string_view(key.data(), key.size()));
    if (it == map_.end()) return false;
    order_.Remove(&it->second);
    map_.erase(it);
    return true;
  }

  // Drops every entry whose value satisfies `pred`; a scan of the whole cache, for rare
  // administrative removals. Returns how many went.
  template <typename Pred>
  size_t EraseIf(Pred pred) {
    size_t n = 0;
    for (auto it = map_.begin(); it != map_.end();) {
      if (pred(it->second.value)) {
        order_.Remove(&it->second);
        map_.erase(it++);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }

  void Clear() {
    while (order_.PopFront() != nullptr) {
    }
    map_.clear();
  }

  size_t size() const { return map_.size(); }
  size_t capacity() const { return capacity_; }
  const LruStats& stats() const { return stats_; }

 private:
  struct Entry : IntrusiveNode<Entry> {
    const std::string* key = nullptr;
    V value{};
    int64_t expires_ns = 0;
  };

  size_t capacity_;
  // node_hash_map: entries never move, so the LRU list can point into them.
  absl::node_hash_map<std::string, Entry> map_;
  IntrusiveList<Entry> order_;
  LruStats stats_;
};

}  // namespace ringproxy
