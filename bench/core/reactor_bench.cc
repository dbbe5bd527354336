// Costs of the runtime's building blocks: a coroutine call, a ring round trip, a
// batch of ring operations per io_uring_enter.
#include <benchmark/benchmark.h>

#include "core/ops.h"
#include "core/reactor.h"
#include "core/sync.h"
#include "core/task.h"

namespace ringproxy {
namespace {

std::unique_ptr<Reactor> MakeReactor() {
  auto r = Reactor::Create(ReactorOptions{});
  if (!r.ok()) abort();
  return std::move(*r);
}

Task<int> Leaf(int x) { co_return x + 1; }

Task<int64_t> CallLeaves(int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += co_await Leaf(static_cast<int>(i & 7));
  co_return sum;
}

// Create, start, complete and destroy one Task (a heap frame) per iteration.
void BM_TaskCallAndReturn(benchmark::State& state) {
  auto reactor = MakeReactor();
  for (auto _ : state) {
    benchmark::DoNotOptimize(RunUntilComplete(*reactor, CallLeaves(1000)));
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_TaskCallAndReturn);

Task<void> NopLoop(int64_t n) {
  for (int64_t i = 0; i < n; ++i) co_await Nop();
}

// One NOP through the ring per iteration: submit, enter, reap, resume.
void BM_RingRoundTrip(benchmark::State& state) {
  auto reactor = MakeReactor();
  for (auto _ : state) RunUntilComplete(*reactor, NopLoop(1000));
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_RingRoundTrip);

Task<void> NopChain(Gate::Holder, int64_t n) {
  for (int64_t i = 0; i < n; ++i) co_await Nop();
}

Task<void> ManyNops(int width, int64_t n) {
  Gate gate;
  for (int i = 0; i < width; ++i) Spawn(NopChain(gate.Enter(), n));
  co_await gate.Wait();
}

// `width` coroutines each waiting on the ring: one enter serves them all.
void BM_RingBatched(benchmark::State& state) {
  auto reactor = MakeReactor();
  const int width = static_cast<int>(state.range(0));
  for (auto _ : state) RunUntilComplete(*reactor, ManyNops(width, 100));
  state.SetItemsProcessed(state.iterations() * width * 100);
  state.counters["enters_per_op"] = benchmark::Counter(
      static_cast<double>(reactor->stats().enters) / (state.iterations() * width * 100.0));
}
BENCHMARK(BM_RingBatched)->Arg(1)->Arg(16)->Arg(256);

}  // namespace
}  // namespace ringproxy

BENCHMARK_MAIN();
