// A log-linear latency histogram (HdrHistogram's layout): values are grouped by
// power of two, and each power of two is split into 2^kSubBits linear buckets, so
// every recorded value is kept within 1/2^kSubBits (0.8 %) relative error, from
// 1 ns to ~18 minutes, in a fixed 35 KiB table. Recording is one shift and one add;
// histograms of several threads merge by adding counts.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace ringproxy::loadgen {

class Histogram {
 public:
  static constexpr int kSubBits = 7;       // 128 buckets per power of two
  static constexpr int kMaxExponent = 40;  // up to 2^40 ns (~18 min)
  static constexpr int kBuckets = (kMaxExponent - kSubBits + 2) << kSubBits;

  void Record(uint64_t value) { RecordN(value, 1); }
  void RecordN(uint64_t value, uint64_t n);
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }
  // The smallest recorded value v such that at least q (0..1) of the values are <= v,
  // reported as the upper edge of v's bucket (never below the true quantile).
  uint64_t Quantile(double q) const;

  static int BucketOf(uint64_t value);
  static uint64_t BucketUpperEdge(int bucket);

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace ringproxy::loadgen
