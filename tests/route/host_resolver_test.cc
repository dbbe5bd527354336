// HostResolver (route/host_resolver.h): names resolved off the reactor, kept for a TTL,
// failures kept shorter, and a wait that the session can stop.
#include "route/host_resolver.h"

#include <string>

#include "core/ops.h"
#include "core/reactor.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

class HostResolverTest : public ::testing::Test {
 protected:
  std::unique_ptr<Reactor> reactor_ = testing::MakeReactor();
};

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
  HostResolver resolver;
  ConnectControl control;
  HostAnswer a = RunUntilComplete(*reactor_, ResolveAndStop(&resolver, &control));
  // The stop may only lose the race to a very fast getaddrinfo.
  if (a.addresses.empty()) {
    EXPECT_EQ(a.error, "name resolution stopped");
    ConnectControl fresh;
    HostAnswer b = RunUntilComplete(*reactor_, ResolveOnce(&resolver, "localhost", 1, &fresh));
    EXPECT_FALSE(b.cached);
    EXPECT_FALSE(b.addresses.empty());
  }
}

}  // namespace
}  // namespace ringproxy
