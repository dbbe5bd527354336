#include "core/task.h"

#include <string>
#include <thread>
#include <vector>

#include "build_info.h"
#include "core/frame_pool.h"
#include "core/ops.h"
#include "core/reactor.h"
#include "core/sync.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

Task<int> Value(int v) { co_return v; }

Task<int64_t> Sum(int depth) {
  if (depth == 0) co_return 0;
  int64_t below = co_await Sum(depth - 1);
  co_return below + depth;
}

Task<std::string> Echo(std::string s) { co_return s; }

Task<std::string> Concat(std::string a, std::string b) {
  Task<std::string> inner = Echo(a);
  std::string left = co_await std::move(inner);
  co_return left + b;
}

TEST(TaskTest, ReturnsValues) {
  auto reactor = testing::MakeReactor();
  EXPECT_EQ(RunUntilComplete(*reactor, Value(42)), 42);
  EXPECT_EQ(RunUntilComplete(*reactor, Concat("ring", "proxy")), "ringproxy");
}

TEST(TaskTest, DeepSynchronousChainDoesNotOverflowTheStack) {
  auto reactor = testing::MakeReactor();
#if defined(__SANITIZE_ADDRESS__) || defined(__OPTIMIZE__) == 0
  // Sanitizers and -O0 turn symmetric transfer into real calls (no tail call), so
  // only the values are checked there, on a chain the stack can hold.
  constexpr int kDepth = 1000;
#else
  // Symmetric transfer: 100k nested awaits that complete synchronously.
  constexpr int kDepth = 100000;
#endif
  EXPECT_EQ(RunUntilComplete(*reactor, Sum(kDepth)), int64_t{kDepth} * (kDepth + 1) / 2);
}

TEST(TaskTest, LazyUntilAwaited) {
  auto reactor = testing::MakeReactor();
  int ran = 0;
  auto body = [](int* ran) -> Task<void> {
    ++*ran;
    co_return;
  };
  Task<void> t = body(&ran);
  EXPECT_EQ(ran, 0);
  RunUntilComplete(*reactor, std::move(t));
  EXPECT_EQ(ran, 1);
}

TEST(TaskTest, DestroyingAnUnstartedTaskFreesIt) {
  auto body = [](std::shared_ptr<int>) -> Task<void> { co_return; };
  auto token = std::make_shared<int>(1);
  {
    Task<void> t = body(token);
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_EQ(token.use_count(), 1);
}

Task<void> Child(Gate::Holder, std::vector<int>* order, int id, int delay_ms) {
  co_await Sleep(Deadline::AfterMs(delay_ms));
  order->push_back(id);
}

Task<void> Parent(std::vector<int>* order) {
  Gate gate;
  Spawn(Child(gate.Enter(), order, 1, 30));
  Spawn(Child(gate.Enter(), order, 2, 10));
  EXPECT_EQ(gate.count(), 2u);
  co_await gate.Wait();
  order->push_back(0);
}

TEST(TaskTest, GateJoinsSpawnedChildren) {
  auto reactor = testing::MakeReactor();
  std::vector<int> order;
  RunUntilComplete(*reactor, Parent(&order));
  EXPECT_EQ(order, (std::vector<int>{2, 1, 0}));
}

Task<void> SetLater(Event* e) {
  co_await Nop();
  e->Set();
}

Task<int> WaitEvent() {
  Event e;
  Spawn(SetLater(&e));
  co_await e.Wait();
  EXPECT_TRUE(e.is_set());
  co_await e.Wait();  // already set: does not suspend
  co_return 7;
}

TEST(TaskTest, EventWakesItsWaiter) {
  auto reactor = testing::MakeReactor();
  EXPECT_EQ(RunUntilComplete(*reactor, WaitEvent()), 7);
}

// Counts live instances: a spawned task's frame holds one until the frame is freed.
struct Alive {
  explicit Alive(int* n) : n_(n) { ++*n_; }
  ~Alive() { --*n_; }
  int* n_;
};

Task<void> Holds(int* alive, bool suspend) {
  Alive a(alive);
  if (suspend) co_await Nop();
}

Task<int> SpawnBoth(int* alive) {
  Spawn(Holds(alive, false));
  EXPECT_EQ(*alive, 0) << "a task that finished at once was not freed";
  Spawn(Holds(alive, true));
  EXPECT_EQ(*alive, 1);
  co_await Nop();
  co_await Nop();
  co_return *alive;
}

TEST(TaskTest, SpawnedTasksFreeTheirFrames) {
  auto reactor = testing::MakeReactor();
  int alive = 0;
  EXPECT_EQ(RunUntilComplete(*reactor, SpawnBoth(&alive)), 0)
      << "a task that suspended was not freed when it ended";
}

// What the pool keeps. Built without pools (-Dpools=false, as the ASan build is) frames
// go to new and delete and there is nothing to check: skipped there.
class FramePoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if !RINGPROXY_POOLS || defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "built without pools: frames go to new and delete";
#endif
  }
};

TEST_F(FramePoolTest, AFreedFrameIsReusedForAFrameOfItsSize) {
  void* a = internal::AllocateFrame(200);
  internal::FreeFrame(a, 200);
  void* b = internal::AllocateFrame(199);  // the same 16-byte class
  EXPECT_EQ(a, b);
  void* c = internal::AllocateFrame(300);  // another class: not that frame
  EXPECT_NE(c, b);
  internal::FreeFrame(b, 199);
  internal::FreeFrame(c, 300);
  // Over the pooled sizes: plain new and delete.
  void* big = internal::AllocateFrame(64 * 1024);
  internal::FreeFrame(big, 64 * 1024);
}

TEST_F(FramePoolTest, AClassKeepsAtMost64KiB) {
  // On a fresh thread, so other tests' frames are not counted.
  std::thread([] {
    for (size_t size : {size_t{1000}, size_t{1024}, size_t{4096}, size_t{8192}}) {
      const size_t rounded = (size + 15) / 16 * 16;
      const size_t keep = 64 * 1024 / rounded;
      std::vector<void*> frames(keep + 3);
      for (void*& f : frames) f = internal::AllocateFrame(size);
      for (void* f : frames) internal::FreeFrame(f, size);
      EXPECT_EQ(internal::PooledFrames(size), keep) << size;
      // All of them come back from the pool; the next is new.
      for (size_t i = 0; i < keep; ++i) frames[i] = internal::AllocateFrame(size);
      EXPECT_EQ(internal::PooledFrames(size), 0U) << size;
      for (size_t i = 0; i < keep; ++i) internal::FreeFrame(frames[i], size);
    }
  }).join();
}

TEST(FramePoolThreadsTest, TasksRunOnPooledFramesOnManyThreads) {
  // Frames allocated, freed and reused by tasks of every depth, on threads that end
  // (their pools are freed then; LSan in the ASan build would see a leak).
  std::vector<std::thread> threads;
  std::vector<int64_t> sums(4);
  for (size_t t = 0; t < sums.size(); ++t) {
    threads.emplace_back([&sums, t] {
      auto reactor = testing::MakeReactor(true);
      for (int i = 0; i < 200; ++i) sums[t] += RunUntilComplete(*reactor, Sum(i % 40));
    });
  }
  for (std::thread& th : threads) th.join();
  int64_t want = 0;
  for (int i = 0; i < 200; ++i) want += (i % 40) * (i % 40 + 1) / 2;
  for (int64_t s : sums) EXPECT_EQ(s, want);
}

}  // namespace
}  // namespace ringproxy
