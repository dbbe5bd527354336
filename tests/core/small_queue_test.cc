#include "core/small_queue.h"

#include <deque>
#include <random>

#include "gtest/gtest.h"

namespace ringproxy {
namespace {

TEST(SmallQueueTest, MatchesADequeUnderRandomOperations) {
  SmallQueue<int, 4> q;
  std::deque<int> model;
  std::mt19937 rng(1);
  int next = 0;
  for (int step = 0; step < 100000; ++step) {
    if (rng() % 3 != 0 || model.empty()) {
      q.push_back(next);
      model.push_back(next++);
    } else {
      ASSERT_EQ(q.front(), model.front());
      q.pop_front();
      model.pop_front();
    }
    ASSERT_EQ(q.size(), model.size());
  }
}

}  // namespace
}  // namespace ringproxy
