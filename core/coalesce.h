// CoalescePolicy: how many completions a shard sleeps for, when `runtime.coalesce_us`
// is on. Under load, waking once per completion costs more than the work it wakes
// for (the wake-up itself, and on the peers' side one wake-up per message the shard
// sends them). Sleeping for a batch turns many small wake-ups into one on both sides,
// at the price of latency: a completion may wait up to the window before it runs.
//
// The completion rate is measured over windows of a few milliseconds. A trial of
// batching starts when the rate measured without it would fill kMinBatch within the
// window (at light load nothing waits); a batched sleep asks for what the rate fills in
// the window, so it lasts about one window (io_uring's min_wait enforces the bound).
// The trial must not slow the traffic down: when peers wait for the shard's answers (a
// closed loop with few operations in flight), holding answers back lowers the rate, and
// then batching stops for a back-off that doubles while trials keep failing. Batching
// pauses now and then to measure the rate without it afresh.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ringproxy {

class CoalescePolicy {
 public:
  // Expected batches smaller than this are not worth a delay.
  static constexpr unsigned kMinBatch = 16;
  // Larger batches save little more and hold more completions back.
  static constexpr unsigned kMaxBatch = 64;
  // The rate is measured over windows of at least this much time.
  static constexpr int64_t kRateWindowNs = 4'000'000;
  // Windows without batching that measure the reference rate.
  static constexpr int kReferenceWindows = 2;
  // Windows of a trial; it fails below this share of the reference rate.
  static constexpr int kTrialWindows = 5;
  static constexpr double kKeepRatio = 0.9;
  // Windows of batching after a good trial before the next reference (~0.2 s).
  static constexpr int kBatchingWindows = 50;
  static constexpr int64_t kMinBackoffNs = 50'000'000;
  static constexpr int64_t kMaxBackoffNs = 2'000'000'000;

  enum class Phase { kReference, kTrial, kBatching };

  // window_us = 0: never coalesce.
  explicit CoalescePolicy(unsigned window_us = 0) : window_us_(window_us) {}

  unsigned window_us() const { return window_us_; }
  // Completions to wait for before waking; 1 = wake at the first.
  unsigned target() const { return target_; }
  Phase phase() const { return phase_; }

  // After each loop turn: the completions reaped so far and the monotonic time.
  void Observe(uint64_t completions, int64_t now_ns) {
    if (window_us_ == 0) return;
    if (window_start_ns_ == 0) {  // the first turn starts the first window
      window_start_ns_ = now_ns;
      window_start_completions_ = completions;
      return;
    }
    const int64_t elapsed = now_ns - window_start_ns_;
    if (elapsed < kRateWindowNs) return;
    const uint64_t n = completions - window_start_completions_;
    window_start_ns_ = now_ns;
    window_start_completions_ = completions;
    phase_ns_ += elapsed;
    phase_completions_ += n;
    ++phase_windows_;
    const double rate = static_cast<double>(n) / static_cast<double>(elapsed);
    const double phase_rate =
        static_cast<double>(phase_completions_) / static_cast<double>(phase_ns_);
    switch (phase_) {
      case Phase::kReference:
        if (now_ns < hold_until_ns_) {
          Enter(Phase::kReference);
        } else if (phase_windows_ >= kReferenceWindows) {
          if (BatchAt(phase_rate) >= kMinBatch) {
            reference_rate_ = phase_rate;
            Enter(Phase::kTrial);
          } else {
            Enter(Phase::kReference);
          }
        }
        break;
      case Phase::kTrial:
        if (BatchAt(rate) < kMinBatch) {
          Enter(Phase::kReference);  // the load went away
        } else if (phase_windows_ >= kTrialWindows) {
          if (phase_rate < reference_rate_ * kKeepRatio) {
            hold_until_ns_ = now_ns + backoff_ns_;
            backoff_ns_ = std::min(backoff_ns_ * 2, kMaxBackoffNs);
            Enter(Phase::kReference);
          } else {
            backoff_ns_ = kMinBackoffNs;
            Enter(Phase::kBatching);
          }
        }
        break;
      case Phase::kBatching:
        if (BatchAt(rate) < kMinBatch || phase_windows_ >= kBatchingWindows) {
          Enter(Phase::kReference);
        }
        break;
    }
    target_ = phase_ == Phase::kReference
                  ? 1u
                  : static_cast<unsigned>(std::clamp<double>(BatchAt(rate), kMinBatch, kMaxBatch));
  }

 private:
  double BatchAt(double rate_per_ns) const {
    return rate_per_ns * static_cast<double>(window_us_) * 1000.0;
  }
  void Enter(Phase p) {
    phase_ = p;
    phase_ns_ = 0;
    phase_completions_ = 0;
    phase_windows_ = 0;
  }

  unsigned window_us_;
  unsigned target_ = 1;
  Phase phase_ = Phase::kReference;
  int64_t window_start_ns_ = 0;
  uint64_t window_start_completions_ = 0;
  int64_t phase_ns_ = 0;  // time, completions and windows since the phase began
  uint64_t phase_completions_ = 0;
  int phase_windows_ = 0;
  double reference_rate_ = 0;  // completions per ns without batching
  int64_t hold_until_ns_ = 0;
  int64_t backoff_ns_ = kMinBackoffNs;
};

}  // namespace ringproxy
