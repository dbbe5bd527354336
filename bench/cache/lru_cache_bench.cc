// The per-core route cache: a hit (the whole cost of a cached resolution's lookup) and
// an insert that evicts (a full cache taking a new route).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "cache/lru_cache.h"

namespace ringproxy {
namespace {

std::vector<std::string> Keys(size_t n) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    keys.push_back("route:proto=imap;user=user" + std::to_string(i) + "@example.com");
  }
  return keys;
}

void BM_Hit(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::vector<std::string> keys = Keys(n);
  LruCache<std::string> cache(n);
  for (const std::string& k : keys) cache.Put(k, "10.0.0.17:7143", 3'600'000'000'000, 0);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.Get(keys[i], 1));
    i = (i + 7919) % n;
  }
}
BENCHMARK(BM_Hit)->Arg(1000)->Arg(100000);

void BM_InsertEvicting(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::vector<std::string> keys = Keys(n * 2);
  LruCache<std::string> cache(n);
  size_t i = 0;
  for (auto _ : state) {
    cache.Put(keys[i], "10.0.0.17:7143", 3'600'000'000'000, 0);
    i = (i + 1) % keys.size();
  }
}
BENCHMARK(BM_InsertEvicting)->Arg(100000);

}  // namespace
}  // namespace ringproxy

BENCHMARK_MAIN();
