// Shard (core/shard.h): a pinned thread with its own reactor; other threads reach it
// only through Post().
#include "core/shard.h"

#include <atomic>
#include <future>
#include <memory>
#include <thread>

#include "core/ops.h"
#include "core/sync.h"
#include "gtest/gtest.h"

namespace ringproxy {
namespace {

TEST(ShardTest, PostRunsTheClosureOnTheShardThread) {
  std::promise<std::thread::id> ran_on;
  Event stop;
  auto shard = Shard::Start(0, -1, ReactorOptions{},
                            [&stop](Shard&) -> Task<void> { co_await stop.Wait(); });
  ASSERT_TRUE(shard.ok()) << shard.status();
  Shard* s = shard->get();
  s->Post([&ran_on] { ran_on.set_value(std::this_thread::get_id()); });
  const std::thread::id id = ran_on.get_future().get();
  EXPECT_NE(id, std::this_thread::get_id());
  s->Post([&stop] { stop.Set(); });
  s->Join();
}

TEST(ShardTest, AClosurePostedAfterTheShardEndedIsReleasedAtOnce) {
  auto shard = Shard::Start(0, -1, ReactorOptions{}, [](Shard&) -> Task<void> { co_return; });
  ASSERT_TRUE(shard.ok()) << shard.status();
  (*shard)->Join();
  // Stands for what a closure may own, such as a listening socket for a reload.
  auto held = std::make_shared<int>(1);
  std::weak_ptr<int> watch = held;
  bool ran = false;
  (*shard)->Post([held = std::move(held), &ran] { ran = *held == 1; });
  EXPECT_TRUE(watch.expired()) << "kept until the Shard is destroyed";
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace ringproxy
