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

class Deadline {
 public:
  static constexpr Deadline Never() { return Deadline(std::numeric_limits<int64_t>::max()); }
  static constexpr Deadline AtNs(int64_t ns) { return Deadline(ns); }
  static Deadline AfterMs(int64_t ms) {
    if (ms < 0) return Never();
    return Deadline(MonotonicNowNs() + ms * 1'000'000);
  }
  static Deadline AfterNs(int64_t ns) { return Deadline(MonotonicNowNs() + ns); }

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
