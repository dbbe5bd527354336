// HostResolver (route/host_resolver.h): names resolved off the reactor, kept for a TTL,
// failures kept shorter, and a wait that the session can stop.
#include "route/host_resolver.h"

#include <netdb.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/reactor.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

// A lookup that hangs until released, as getaddrinfo does when a DNS server does not
// answer; then it answers 127.0.0.1.
std::atomic<bool> g_release{false};
int HeldLookup(const char*, std::vector<SocketAddress>* out) {
  const timespec ms{0, 1'000'000};
  while (!g_release.load()) nanosleep(&ms, nullptr);
  out->push_back(*SocketAddress::FromNumeric("127.0.0.1", 0));
  return 0;
}

// The same, ending in a temporary failure.
int HeldFailingLookup(const char*, std::vector<SocketAddress>*) {
  const timespec ms{0, 1'000'000};
  while (!g_release.load()) nanosleep(&ms, nullptr);
  return EAI_AGAIN;
}

class HostResolverTest : public ::testing::Test {
 protected:
  void SetUp() override { g_release = false; }
  void TearDown() override { g_release = true; }
  std::unique_ptr<Reactor> reactor_ = testing::MakeReactor();
};

Task<void> WaitForThreadsToEnd(HostResolver* r) {
  for (int i = 0; i < 5000 && r->threads_alive() > 0; ++i) co_await Sleep(Deadline::AfterMs(1));
}

Task<HostAnswer> ResolveOnce(HostResolver* r, std::string host, uint16_t port,
                             ConnectControl* control) {
  HostAnswer a = co_await r->Resolve(std::move(host), port, control);
  co_return a;
}

TEST_F(HostResolverTest, ResolvesAndCachesAName) {
  HostResolver resolver;
  ConnectControl control;
  HostAnswer a = RunUntilComplete(*reactor_, ResolveOnce(&resolver, "localhost", 7143, &control));
  ASSERT_FALSE(a.addresses.empty()) << a.error;
  EXPECT_FALSE(a.cached);
  bool loopback = false;
  for (const SocketAddress& s : a.addresses) {
    EXPECT_EQ(s.port(), 7143);
    loopback = loopback || s.HostString() == "127.0.0.1" || s.HostString() == "::1";
  }
  EXPECT_TRUE(loopback) << a.addresses[0].ToString();
  HostAnswer again = RunUntilComplete(*reactor_, ResolveOnce(&resolver, "localhost", 25, &control));
  EXPECT_TRUE(again.cached);
  ASSERT_EQ(again.addresses.size(), a.addresses.size());
  EXPECT_EQ(again.addresses[0].port(), 25);
  EXPECT_EQ(resolver.threads_started(), 1u);
}

TEST_F(HostResolverTest, AnUnknownNameFailsAndTheFailureIsKeptBriefly) {
  HostResolverOptions options;
  options.negative_ttl_ms = 60'000;
  HostResolver resolver(options);
  ConnectControl control;
  HostAnswer a =
      RunUntilComplete(*reactor_, ResolveOnce(&resolver, "no-such-host.invalid", 1, &control));
  EXPECT_TRUE(a.addresses.empty());
  EXPECT_FALSE(a.error.empty());
  HostAnswer b =
      RunUntilComplete(*reactor_, ResolveOnce(&resolver, "no-such-host.invalid", 1, &control));
  EXPECT_TRUE(b.cached);
  EXPECT_EQ(b.error, a.error);
  EXPECT_EQ(resolver.threads_started(), 1u);
}

Task<HostAnswer> ResolveAndStop(HostResolver* r, ConnectControl* control) {
  // Stop the wait as a session's Stop() does, right after it began.
  struct Stopper {
    static Task<void> Run(ConnectControl* c) {
      co_await Sleep(Deadline::AfterMs(0));
      c->stop = true;
      if (c->current_fd >= 0) Reactor::Current()->CancelFd(c->current_fd);
    }
  };
  Spawn(Stopper::Run(control));
  HostAnswer a = co_await r->Resolve("localhost", 1, control);
  co_return a;
}

TEST_F(HostResolverTest, AStoppedWaitEndsWithoutAnAnswerAndCachesNothing) {
  HostResolverOptions options;
  options.lookup = &HeldLookup;
  HostResolver resolver(options);
  ConnectControl control;
  HostAnswer a = RunUntilComplete(*reactor_, ResolveAndStop(&resolver, &control));
  EXPECT_TRUE(a.addresses.empty());
  EXPECT_EQ(a.error, "name resolution stopped");
  g_release = true;
  ConnectControl fresh;
  HostAnswer b = RunUntilComplete(*reactor_, ResolveOnce(&resolver, "localhost", 1, &fresh));
  EXPECT_FALSE(b.cached);
  ASSERT_EQ(b.addresses.size(), 1u);
  EXPECT_EQ(b.addresses[0].ToString(), "127.0.0.1:1");
  RunUntilComplete(*reactor_, WaitForThreadsToEnd(&resolver));
}

TEST_F(HostResolverTest, AHungResolverTimesOutAndItsThreadCountsAgainstTheCapUntilItEnds) {
  HostResolverOptions options;
  options.lookup = &HeldLookup;
  options.timeout_ms = 50;
  options.max_in_flight = 1;
  HostResolver resolver(options);
  ConnectControl control;
  HostAnswer a = RunUntilComplete(*reactor_, ResolveOnce(&resolver, "mbox1.example", 1, &control));
  EXPECT_EQ(a.error, "name resolution timed out");
  EXPECT_EQ(resolver.threads_alive(), 1u);
  // The thread behind the timeout still runs: no second one while it does.
  HostAnswer b = RunUntilComplete(*reactor_, ResolveOnce(&resolver, "mbox2.example", 1, &control));
  EXPECT_EQ(b.error, "too many name resolutions in flight");
  EXPECT_EQ(resolver.threads_started(), 1u);
  g_release = true;
  RunUntilComplete(*reactor_, WaitForThreadsToEnd(&resolver));
  EXPECT_EQ(resolver.threads_alive(), 0u);
  HostAnswer c = RunUntilComplete(*reactor_, ResolveOnce(&resolver, "mbox2.example", 7, &control));
  ASSERT_EQ(c.addresses.size(), 1u) << c.error;
  EXPECT_EQ(c.addresses[0].ToString(), "127.0.0.1:7");
  EXPECT_EQ(resolver.threads_started(), 2u);
}

// Ten sessions miss one name at once (a burst of logins to one mailbox host), and the
// first of them is stopped: the others all get the answer, from one thread.
Task<void> BurstOfOneName(HostResolver* r, std::vector<HostAnswer>* answers) {
  std::vector<ConnectControl> controls(answers->size());
  int left = static_cast<int>(answers->size());
  struct One {
    static Task<void> Run(HostResolver* r, ConnectControl* c, HostAnswer* out, int* left) {
      *out = co_await r->Resolve("mbox1.example", 7143, c);
      --*left;
    }
  };
  for (size_t i = 0; i < answers->size(); ++i) {
    Spawn(One::Run(r, &controls[i], &(*answers)[i], &left));
  }
  co_await Sleep(Deadline::AfterMs(5));
  controls[0].stop = true;
  if (controls[0].current_fd >= 0) Reactor::Current()->CancelFd(controls[0].current_fd);
  co_await Sleep(Deadline::AfterMs(5));
  g_release = true;
  for (int i = 0; i < 5000 && left > 0; ++i) co_await Sleep(Deadline::AfterMs(1));
}

TEST_F(HostResolverTest, ConcurrentMissesOfOneNameShareOneThreadAndOneStopStopsOnlyItsWait) {
  HostResolverOptions options;
  options.lookup = &HeldLookup;
  options.max_in_flight = 2;
  HostResolver resolver(options);
  std::vector<HostAnswer> answers(10);
  RunUntilComplete(*reactor_, BurstOfOneName(&resolver, &answers));
  EXPECT_EQ(answers[0].error, "name resolution stopped");
  for (size_t i = 1; i < answers.size(); ++i) {
    ASSERT_EQ(answers[i].addresses.size(), 1u) << i << ": " << answers[i].error;
    EXPECT_EQ(answers[i].addresses[0].ToString(), "127.0.0.1:7143");
    EXPECT_FALSE(answers[i].cached);
  }
  EXPECT_EQ(resolver.threads_started(), 1u);
  ConnectControl control;
  HostAnswer again =
      RunUntilComplete(*reactor_, ResolveOnce(&resolver, "mbox1.example", 1, &control));
  EXPECT_TRUE(again.cached);
  RunUntilComplete(*reactor_, WaitForThreadsToEnd(&resolver));
}

// A failure nobody waited for (every wait had timed out) is kept for the failure's
// short TTL, not the answer's.
TEST_F(HostResolverTest, AFailureNobodyTookIsNotServedPastItsShortTtl) {
  HostResolverOptions options;
  options.lookup = &HeldFailingLookup;
  options.timeout_ms = 1;
  options.negative_ttl_ms = 20;
  HostResolver resolver(options);
  ConnectControl control;
  HostAnswer a = RunUntilComplete(*reactor_, ResolveOnce(&resolver, "mbox1.example", 1, &control));
  EXPECT_EQ(a.error, "name resolution timed out");
  g_release = true;
  RunUntilComplete(*reactor_, WaitForThreadsToEnd(&resolver));
  usleep(50'000);
  RunUntilComplete(*reactor_, ResolveOnce(&resolver, "mbox1.example", 1, &control));
  EXPECT_EQ(resolver.threads_started(), 2u);  // asked again, not the old failure
  RunUntilComplete(*reactor_, WaitForThreadsToEnd(&resolver));
}

size_t OpenFds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// A resolver that hangs: every login to that host joins its thread and gives up at the
// timeout, and none may leave its eventfd behind while the thread still runs.
TEST_F(HostResolverTest, WaitsThatGiveUpOnAHungResolverLeaveNoDescriptorBehind) {
  HostResolverOptions options;
  options.lookup = &HeldLookup;
  options.timeout_ms = 1;
  HostResolver resolver(options);
  const size_t before = OpenFds();
  for (int i = 0; i < 200; ++i) {
    ConnectControl control;
    HostAnswer a =
        RunUntilComplete(*reactor_, ResolveOnce(&resolver, "mbox1.example", 1, &control));
    ASSERT_EQ(a.error, "name resolution timed out");
  }
  EXPECT_LT(OpenFds(), before + 10);
  EXPECT_EQ(resolver.threads_started(), 1u);
  g_release = true;
  RunUntilComplete(*reactor_, WaitForThreadsToEnd(&resolver));
}

}  // namespace
}  // namespace ringproxy
