#include <algorithm>

#include "bench/loadgen/loadgen.h"
#include "core/ops.h"

namespace ringproxy::loadgen {

Pacer::Pacer(const ThreadContext* ctx, int connection_index) {
  const Options& o = *ctx->options;
  if (o.rate <= 0) return;
  // Each connection carries rate/connections; starts are staggered so that the
  // connections do not fire in lockstep.
  interval_ns_ = static_cast<int64_t>(1e9 * o.connections / o.rate);
  const int64_t stagger =
      interval_ns_ * (ctx->index + static_cast<int64_t>(connection_index) * ctx->options->threads) /
      std::max(o.connections, 1);
  next_ns_ = ctx->control->start_ns + stagger % std::max<int64_t>(interval_ns_, 1);
}

Task<int64_t> Pacer::Next() {
  if (interval_ns_ == 0) co_return MonotonicNowNs();
  const int64_t intended = next_ns_;
  next_ns_ += interval_ns_;
  // The schedule is quantised to 250 us ticks so that the connections of a thread
  // wake together (one ring wake-up serves many of them), which keeps the generator
  // itself cheap at high rates; the average rate is unchanged. Behind schedule: start
  // at once; the wait counts in the latency (no coordinated omission).
  constexpr int64_t kTickNs = 250'000;
  const int64_t start = (intended + kTickNs - 1) / kTickNs * kTickNs;
  if (MonotonicNowNs() < start) co_await Sleep(Deadline::AtNs(start));
  co_return start;
}

int64_t Pacer::due_ns() const { return interval_ns_ == 0 ? MonotonicNowNs() : next_ns_; }

uint64_t KeepGoing(ThreadContext* ctx, const Pacer& pacer, uint64_t* remaining, uint64_t want) {
  // Dropping the operations a stall put behind would drop the latency it caused.
  if (pacer.due_ns() >= ctx->control->end_ns) return 0;
  if (ctx->options->count == 0) return want;
  const uint64_t granted = std::min(want, *remaining);
  *remaining -= granted;
  return granted;
}

Deadline IoDeadline(const ThreadContext* ctx) {
  return Deadline::AfterNs(static_cast<int64_t>(ctx->options->io_timeout_s * 1e9));
}

}  // namespace ringproxy::loadgen
