// Per-shard counters and gauges. Only the owning shard writes (a relaxed load and
// store: no lock prefix, no shared cache line traffic); any thread may read, and
// readers sum across shards when they report. This keeps the data path free of
// atomic read-modify-writes while a stats scrape stays race-free.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringproxy {

class Counter {
 public:
  void Add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Add(int64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void Sub(int64_t n = 1) { Add(-n); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

}  // namespace ringproxy
