#include "bench/loadgen/histogram.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace ringproxy::loadgen {
namespace {

TEST(HistogramTest, BucketsAreContinuousAndWithinOnePercent) {
  for (uint64_t v :
       {0ull, 1ull, 127ull, 128ull, 255ull, 256ull, 1000ull, 123456789ull, (1ull << 40) - 1}) {
    int b = Histogram::BucketOf(v);
    uint64_t upper = Histogram::BucketUpperEdge(b);
    EXPECT_GE(upper, v);
    EXPECT_LE(static_cast<double>(upper - v), 0.008 * static_cast<double>(v) + 1) << v;
  }
  for (int b = 1; b < Histogram::kBuckets - 1; ++b) {
    EXPECT_EQ(Histogram::BucketOf(Histogram::BucketUpperEdge(b - 1) + 1), b) << b;
  }
}

TEST(HistogramTest, QuantilesMatchSortedValues) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(10, 2);
  std::vector<uint64_t> values;
  Histogram h, a, b;
  for (int i = 0; i < 100000; ++i) {
    auto v = static_cast<uint64_t>(dist(rng));
    values.push_back(v);
    h.Record(v);
    (i % 2 == 0 ? a : b).Record(v);
  }
  a.Merge(b);
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    uint64_t exact = values[static_cast<size_t>(q * values.size()) - 1];
    uint64_t got = h.Quantile(q);
    EXPECT_GE(got, exact);
    EXPECT_LE(static_cast<double>(got), exact * 1.01 + 1) << q;
    EXPECT_EQ(a.Quantile(q), got);
  }
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.Quantile(1.0), values.back());
}

}  // namespace
}  // namespace ringproxy::loadgen
