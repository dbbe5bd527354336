// Monotonic time and absolute deadlines. Every network wait in ringproxy carries a
// Deadline; it is absolute so that one budget can span several waits.
#pragma once

#include <time.h>

#include <cstdint>
#include <limits>

namespace ringproxy {

inline int64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

namespace internal {
// The clock as first read in the reactor turn running on this thread: 0 until read,
// -1 when no turn is running (Reactor::Run sets it).
inline thread_local int64_t t_turn_ns = -1;
}  // namespace internal

// The monotonic time, read once per reactor turn: a turn lasts micro- to milliseconds
// against timeouts of seconds, and a proxied request read the clock ten times. Outside
// a turn, the clock.
inline int64_t TurnNowNs() {
  int64_t& t = internal::t_turn_ns;
  if (t > 0) return t;
  const int64_t now = MonotonicNowNs();
  if (t == 0) t = now;
  return now;
}

class Deadline {
 public:
  static constexpr Deadline Never() { return Deadline(std::numeric_limits<int64_t>::max()); }
  static constexpr Deadline AtNs(int64_t ns) { return Deadline(ns); }
  static Deadline AfterMs(int64_t ms) {
    if (ms < 0) return Never();
    return Deadline(TurnNowNs() + ms * 1'000'000);
  }
  static Deadline AfterNs(int64_t ns) { return Deadline(TurnNowNs() + ns); }

  constexpr bool finite() const { return ns_ != std::numeric_limits<int64_t>::max(); }
  constexpr int64_t ns() const { return ns_; }
  bool Passed() const { return finite() && MonotonicNowNs() >= ns_; }
  constexpr bool operator<(const Deadline& o) const { return ns_ < o.ns_; }
  constexpr bool operator==(const Deadline& o) const { return ns_ == o.ns_; }

 private:
  constexpr explicit Deadline(int64_t ns) : ns_(ns) {}
  int64_t ns_;
};

inline Deadline Earliest(Deadline a, Deadline b) { return a < b ? a : b; }

}  // namespace ringproxy
