// The batch-size policy alone (core/coalesce.h), and a reactor that uses it: under a
// stream of completions it sleeps for batches and loses none; at light load it never
// asks for more than one.
#include "core/coalesce.h"

#include "core/ops.h"
#include "core/sync.h"
#include "gtest/gtest.h"

namespace ringproxy {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(CoalescePolicy, OffNeverBatches) {
  CoalescePolicy p(0);
  p.Observe(0, kMs);
  p.Observe(1'000'000, 2 * kMs);
  EXPECT_EQ(p.target(), 1u);
}

TEST(CoalescePolicy, BatchIsWhatTheRateDeliversWithinTheWindow) {
  CoalescePolicy p(200);
  p.Observe(0, 10 * kMs);
  p.Observe(100, 11 * kMs);  // 100 per ms: 20 in 200 us
  EXPECT_EQ(p.target(), 20u);
  p.Observe(300, 12 * kMs);  // 200 per ms: 40
  EXPECT_EQ(p.target(), 40u);
}

TEST(CoalescePolicy, LightLoadWakesAtTheFirstCompletion) {
  CoalescePolicy p(200);
  p.Observe(0, 10 * kMs);
  p.Observe(39, 11 * kMs);  // 7.8 expected: below the minimum batch
  EXPECT_EQ(p.target(), 1u);
}

TEST(CoalescePolicy, BatchIsCapped) {
  CoalescePolicy p(1000);
  p.Observe(0, 10 * kMs);
  p.Observe(1'000'000, 11 * kMs);
  EXPECT_EQ(p.target(), CoalescePolicy::kMaxBatch);
}

TEST(CoalescePolicy, RateIsMeasuredOverAtLeastTheRateWindow) {
  CoalescePolicy p(200);
  p.Observe(0, 10 * kMs);
  p.Observe(1000, 10 * kMs + kMs / 2);  // too soon to count: no change yet
  EXPECT_EQ(p.target(), 1u);
  p.Observe(1000, 11 * kMs);  // 1000 over 1 ms
  EXPECT_EQ(p.target(), CoalescePolicy::kMaxBatch);
}

TEST(CoalescePolicy, QuietPeriodEndsBatching) {
  CoalescePolicy p(200);
  p.Observe(0, 10 * kMs);
  p.Observe(500, 11 * kMs);
  EXPECT_GT(p.target(), 1u);
  p.Observe(501, 61 * kMs);  // one completion in 50 ms
  EXPECT_EQ(p.target(), 1u);
}

Task<void> Sleeper(int rounds, int64_t ns, int* done, Gate::Holder) {
  for (int i = 0; i < rounds; ++i) {
    IoResult r = co_await Sleep(Deadline::AfterNs(ns));
    EXPECT_EQ(r.res, 0);
  }
  ++*done;
}

// `sleepers` coroutines each sleep `rounds` times for `ns`: every sleep is a completion.
Task<void> Sleepers(int sleepers, int rounds, int64_t ns, int* done) {
  Gate gate;
  for (int i = 0; i < sleepers; ++i) Spawn(Sleeper(rounds, ns, done, gate.Enter()));
  co_await gate.Wait();
}

// Sleepers on a fresh reactor with `coalesce_us`; its stats once all are done.
ReactorStats RunSleepers(unsigned coalesce_us, int sleepers, int rounds, int64_t ns) {
  ReactorOptions options;
  options.coalesce_us = coalesce_us;
  auto reactor = Reactor::Create(options);
  EXPECT_TRUE(reactor.ok()) << reactor.status().message();
  if (!reactor.ok()) return {};
  int done = 0;
  RunUntilComplete(**reactor, Sleepers(sleepers, rounds, ns, &done));
  EXPECT_EQ(done, sleepers);
  EXPECT_GE((*reactor)->stats().completions, static_cast<uint64_t>(sleepers) * rounds);
  return (*reactor)->stats();
}

TEST(CoalescingReactor, SleepsForBatchesUnderLoadAndCompletesEverything) {
  EXPECT_GT(RunSleepers(200, 64, 300, 20'000).coalesced_waits, 0u);
}

TEST(CoalescingReactor, LightLoadNeverWaitsForABatch) {
  EXPECT_EQ(RunSleepers(200, 1, 20, 2 * kMs).coalesced_waits, 0u);
}

TEST(CoalescingReactor, OffNeverWaitsForABatch) {
  EXPECT_EQ(RunSleepers(0, 64, 100, 20'000).coalesced_waits, 0u);
}

}  // namespace
}  // namespace ringproxy
