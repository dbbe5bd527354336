#include "bench/loadgen/histogram.h"

#include <algorithm>
#include <cmath>

namespace ringproxy::loadgen {

int Histogram::BucketOf(uint64_t value) {
  // Values below 2^kSubBits map 1:1; above, keep kSubBits bits below the top bit.
  if (value < (uint64_t{1} << kSubBits)) return static_cast<int>(value);
  int top = 63 - __builtin_clzll(value);  // index of the highest set bit, >= kSubBits
  if (top > kMaxExponent) return kBuckets - 1;
  int shift = top - kSubBits;
  auto sub = static_cast<int>((value >> shift) & ((1 << kSubBits) - 1));
  return ((shift + 1) << kSubBits) + sub;
}

uint64_t Histogram::BucketUpperEdge(int bucket) {
  if (bucket < (1 << kSubBits)) return static_cast<uint64_t>(bucket);
  int shift = (bucket >> kSubBits) - 1;
  uint64_t sub = static_cast<uint64_t>(bucket & ((1 << kSubBits) - 1));
  uint64_t low = ((uint64_t{1} << kSubBits) | sub) << shift;
  return low + ((uint64_t{1} << shift) - 1);
}

void Histogram::RecordN(uint64_t value, uint64_t n) {
  if (n == 0) return;
  counts_[static_cast<size_t>(BucketOf(value))] += n;
  count_ += n;
  sum_ += value * n;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t Histogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(BucketUpperEdge(static_cast<int>(i)), max_);
  }
  return max_;
}

}  // namespace ringproxy::loadgen
