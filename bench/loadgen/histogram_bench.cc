#include <benchmark/benchmark.h>

#include "bench/loadgen/histogram.h"
#include "bench/loadgen/pattern.h"

namespace ringproxy::loadgen {
namespace {

void BM_HistogramRecord(benchmark::State& state) {
  Histogram h;
  uint64_t v = 1;
  for (auto _ : state) {
    h.Record(v);
    v = v * 6364136223846793005ull + 1442695040888963407ull;
    v >>= 24;  // values up to ~1e12 ns
  }
  benchmark::DoNotOptimize(h.count());
}
BENCHMARK(BM_HistogramRecord);

void BM_HistogramQuantile(benchmark::State& state) {
  Histogram h;
  for (uint64_t i = 1; i < 1000000; i += 7) h.Record(i * 1000);
  for (auto _ : state) benchmark::DoNotOptimize(h.Quantile(0.99));
}
BENCHMARK(BM_HistogramQuantile);

void BM_PatternVerify(benchmark::State& state) {
  const Pattern& p = Pattern::Get();
  auto chunk = p.At(12345, 65536);
  for (auto _ : state) benchmark::DoNotOptimize(p.Matches(12345, chunk));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * chunk.size()));
}
BENCHMARK(BM_PatternVerify);

}  // namespace
}  // namespace ringproxy::loadgen

BENCHMARK_MAIN();
