// CoalescePolicy: how many completions a shard sleeps for, when `runtime.coalesce_us`
// is on. Under load, waking once per completion costs more than the work it wakes
// for (the wake-up itself, and on the peers' side one wake-up per message the shard
// sends them). Waiting for a batch turns many small wake-ups into one on both sides,
// at the price of latency: a completion may wait up to the window before it runs.
//
// The batch asked for is what the recent completion rate delivers within the window,
// so a wait ends after about one window. Below kMinBatch the shard wakes at the first
// completion as usual: at light load nothing waits. The kernel enforces the bound
// (io_uring's min_wait: once the window has passed, any completion ends the sleep).
#pragma once

#include <algorithm>
#include <cstdint>

namespace ringproxy {

class CoalescePolicy {
 public:
  // Expected batches smaller than this are not worth a delay.
  static constexpr unsigned kMinBatch = 8;
  // Larger batches save little more and hold more completions back.
  static constexpr unsigned kMaxBatch = 64;
  // The rate is measured over at least this much time (1 ms).
  static constexpr int64_t kRateWindowNs = 1'000'000;

  // window_us = 0: never coalesce.
  explicit CoalescePolicy(unsigned window_us = 0) : window_us_(window_us) {}

  unsigned window_us() const { return window_us_; }
  // Completions to wait for before waking; 1 = wake at the first.
  unsigned target() const { return target_; }

  // After each loop turn: the completions reaped so far and the monotonic time.
  void Observe(uint64_t completions, int64_t now_ns) {
    if (window_us_ == 0) return;
    int64_t elapsed = now_ns - since_ns_;
    if (elapsed < kRateWindowNs) return;
    double expected = static_cast<double>(completions - since_completions_) *
                      (static_cast<double>(window_us_) * 1000.0) / static_cast<double>(elapsed);
    target_ =
        expected < kMinBatch ? 1u : static_cast<unsigned>(std::min<double>(expected, kMaxBatch));
    since_ns_ = now_ns;
    since_completions_ = completions;
  }

 private:
  unsigned window_us_;
  unsigned target_ = 1;
  int64_t since_ns_ = 0;
  uint64_t since_completions_ = 0;
};

}  // namespace ringproxy
