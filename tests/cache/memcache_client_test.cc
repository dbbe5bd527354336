// The memcached client against real memcached servers (Debian's, binary protocol).
#include "cache/memcache_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/ops.h"
#include "core/sync.h"
#include "gtest/gtest.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

CacheServer ServerAt(const testing::Memcached& m) { return *ParseCacheServer(m.address()); }

CacheServer LoopbackServer(uint16_t port) {
  return *ParseCacheServer("127.0.0.1:" + std::to_string(port));
}

class MemcacheClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = testing::MakeReactor();
    ASSERT_TRUE(a_.Start());
    ASSERT_TRUE(b_.Start());
  }
  MemcacheOptions Options(std::vector<CacheServer> servers) {
    MemcacheOptions o;
    o.servers = std::move(servers);
    o.timeout_ms = 1000;
    o.reconnect_ms = 60000;
    return o;
  }
  std::unique_ptr<Reactor> reactor_;
  testing::Memcached a_, b_;
};

Task<std::vector<McReply>> Basics(MemcacheClient* c) {
  std::vector<McReply> out;
  out.push_back(co_await c->Get("missing"));
  out.push_back(co_await c->Add("route:proto=imap;user=a@b", "10.0.0.1:7143", 60));
  out.push_back(
      co_await c->Add("route:proto=imap;user=a@b", "10.9.9.9:1", 60));  // add never overwrites
  out.push_back(co_await c->Get("route:proto=imap;user=a@b"));
  out.push_back(co_await c->Increment("throttle:user=a@b", 1, 1, 60));  // created at 1
  out.push_back(co_await c->Increment("throttle:user=a@b", 1, 1, 60));  // 2
  out.push_back(co_await c->Get("throttle:user=a@b"));                  // "2" as text
  out.push_back(co_await c->Delete("route:proto=imap;user=a@b"));
  out.push_back(co_await c->Get("route:proto=imap;user=a@b"));
  out.push_back(co_await c->Get(std::string(300, 'k')));  // long key: hashed, allowed
  co_await c->Close();
  co_return out;
}

TEST_F(MemcacheClientTest, GetAddIncrementDelete) {
  MemcacheClient c(Options({ServerAt(a_)}));
  std::vector<McReply> r = RunUntilComplete(*reactor_, Basics(&c));
  ASSERT_EQ(r.size(), 10u);
  for (const McReply& x : r) EXPECT_TRUE(x.ok());
  EXPECT_EQ(r[0].status, static_cast<uint16_t>(memcache::Status::kKeyNotFound));
  EXPECT_TRUE(r[1].hit());
  EXPECT_EQ(r[2].status, static_cast<uint16_t>(memcache::Status::kKeyExists));
  EXPECT_EQ(r[3].value, "10.0.0.1:7143");
  EXPECT_EQ(r[4].counter, 1u);
  EXPECT_EQ(r[5].counter, 2u);
  EXPECT_EQ(r[6].value, "2");
  EXPECT_TRUE(r[7].hit());
  EXPECT_EQ(r[8].status, static_cast<uint16_t>(memcache::Status::kKeyNotFound));
  EXPECT_EQ(c.stats().connects, 1u);  // one persistent connection for all of it
}

Task<std::vector<McReply>> BigThenSmall(MemcacheClient* c) {
  std::vector<McReply> out;
  out.push_back(co_await c->Set("small", "v", 60));
  out.push_back(co_await c->Set("big", std::string(1200 * 1024, 'x'), 60));
  out.push_back(co_await c->Get("big"));
  out.push_back(co_await c->Get("small"));
  out.push_back(co_await c->Get("big"));
  out.push_back(co_await c->Get("small"));
  co_await c->Close();
  co_return out;
}

// A value above max_value (someone else's, under one of our keys) fails its own reads
// and nothing else: the server stays in use.
TEST_F(MemcacheClientTest, AValueTooLargeFailsItsReadAndNotTheServer) {
  testing::Memcached large;
  ASSERT_TRUE(large.Start(1, "4m"));
  MemcacheOptions o = Options({ServerAt(large)});
  o.max_value = 1 << 20;
  MemcacheClient c(o);
  std::vector<McReply> r = RunUntilComplete(*reactor_, BigThenSmall(&c));
  ASSERT_EQ(r.size(), 6u);
  EXPECT_TRUE(r[0].ok() && r[1].ok()) << static_cast<int>(r[1].error);
  EXPECT_EQ(r[2].error, McError::kProtocol);
  EXPECT_EQ(r[3].value, "v");
  EXPECT_EQ(r[4].error, McError::kProtocol);
  EXPECT_EQ(r[5].value, "v");
  EXPECT_EQ(c.stats().servers_marked_bad, 0u);
  EXPECT_EQ(c.stats().connects, 1u);
}

Task<int> Pipelined(MemcacheClient* c, int n) {
  Gate gate;
  int ok = 0;
  auto one = [](MemcacheClient* c, int i, int* ok, Gate::Holder) -> Task<void> {
    std::string key = "p" + std::to_string(i);
    McReply a = co_await c->Set(key, "v" + std::to_string(i), 60);
    McReply g = co_await c->Get(key);
    if (a.hit() && g.value == "v" + std::to_string(i)) ++*ok;
  };
  for (int i = 0; i < n; ++i) Spawn(one(c, i, &ok, gate.Enter()));
  co_await gate.Wait();
  co_await c->Close();
  co_return ok;
}

TEST_F(MemcacheClientTest, ManyRequestsInFlightMatchTheirReplies) {
  MemcacheClient c(Options({ServerAt(a_), ServerAt(b_)}));
  EXPECT_EQ(RunUntilComplete(*reactor_, Pipelined(&c, 500)), 500);
  EXPECT_EQ(c.stats().connects, 2u);
}

Task<std::vector<int>> KillOneServer(MemcacheClient* c, testing::Memcached* victim,
                                     int victim_index, std::vector<std::string> keys) {
  std::vector<int> out;
  // Every key written while both are up.
  for (const std::string& k : keys) (void)co_await c->Set(k, "x", 60);
  victim->Stop();  // killed and reaped: gone before the first Get
  int failed = 0, on_victim = 0;
  // The victim's keys fail until its connection is found dead, then go elsewhere.
  for (const std::string& k : keys) {
    McReply r = co_await c->Get(k);
    if (!r.ok()) ++failed;
    if (c->ServerFor(k) == victim_index) ++on_victim;
  }
  out.push_back(failed);
  out.push_back(on_victim);
  int failed_after = 0;
  for (const std::string& k : keys) {
    McReply r = co_await c->Set(k, "y", 60);
    if (!r.ok()) ++failed_after;
  }
  out.push_back(failed_after);
  co_await c->Close();
  co_return out;
}

TEST_F(MemcacheClientTest, ADeadServerIsMarkedBadAndItsKeysRemapped) {
  MemcacheClient c(Options({ServerAt(a_), ServerAt(b_)}));
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) keys.push_back("route:proto=imap;user=u" + std::to_string(i));
  std::vector<int> r = RunUntilComplete(*reactor_, KillOneServer(&c, &b_, 1, keys));
  EXPECT_LE(r[0], 1) << "at most the request in flight when the reset was seen fails";
  EXPECT_EQ(r[1], 0) << "no key maps to the dead server any more";
  EXPECT_EQ(r[2], 0) << "all writes succeed on the surviving server";
  EXPECT_EQ(c.stats().servers_marked_bad, 1u);
  EXPECT_FALSE(c.ServerUsable(1));
}

Task<std::vector<bool>> SetThenFindOnEach(MemcacheClient* c, std::string key, MemcacheClient* a,
                                          MemcacheClient* b) {
  std::vector<bool> out;
  out.push_back((co_await c->Set(key, "v", 60)).hit());
  out.push_back((co_await a->Get(key)).hit());
  out.push_back((co_await b->Get(key)).hit());
  co_await c->Close();
  co_await a->Close();
  co_await b->Close();
  co_return out;
}

// Zimbra's fork places a key by its own text, 64-bit one-at-a-time hash mod N, and only
// then swaps a key over 250 bytes for its MD5 on the wire. These two keys land on the
// other server when placed by their MD5 (with either hash) or by the 32-bit hash.
TEST_F(MemcacheClientTest, ZimbraPlacementOfALongKeyFollowsTheKeyNotItsMd5) {
  const std::string at_a = "alias:user=" + std::string(251, 'a') + ";ip=10.0.0.1";
  const std::string at_b = "alias:user=" + std::string(259, 'a') + ";ip=10.0.0.1";
  for (const auto& [key, on_a] : {std::pair{at_a, true}, std::pair{at_b, false}}) {
    MemcacheOptions o = Options({ServerAt(a_), ServerAt(b_)});
    o.distribution = Distribution::kZimbra;
    MemcacheClient both(o), only_a(Options({ServerAt(a_)})), only_b(Options({ServerAt(b_)}));
    std::vector<bool> r =
        RunUntilComplete(*reactor_, SetThenFindOnEach(&both, key, &only_a, &only_b));
    ASSERT_EQ(r.size(), 3u);
    EXPECT_TRUE(r[0]);
    EXPECT_EQ(r[1], on_a) << key.size();
    EXPECT_EQ(r[2], !on_a) << key.size();
  }
}

// A loopback listener whose accept queue is full: the kernel drops SYNs to it, so a
// connect there waits for its own timeout (a powered-off host behind a firewall).
struct SynDropper {
  SynDropper() {
    listener = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listener.get(), 0), 0);
    socklen_t len = sizeof(a);
    getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    for (int i = 0; i < 4; ++i) {
      fillers.emplace_back(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      (void)connect(fillers.back().get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // their handshakes fill it
  }
  UniqueFd listener;
  std::vector<UniqueFd> fillers;
  uint16_t port = 0;
};

Task<std::vector<McReply>> GetsBeforeAndAfterTheRetryTime(MemcacheClient* c,
                                                          std::vector<std::string> keys) {
  std::vector<McReply> out;
  out.push_back(co_await c->Get(keys[0]));  // waits for the first connect, which fails
  co_await Sleep(Deadline::AfterMs(300));   // past reconnect_ms
  for (const std::string& k : keys) out.push_back(co_await c->Get(k));
  co_await c->Close();
  co_return out;
}

// After reconnect_ms a server is connected to again in the background; until that
// succeeds its keys stay with the live server instead of waiting for the connect (a
// connect timeout every reconnect_ms, with logins running as cache misses meanwhile).
TEST_F(MemcacheClientTest, AServerTriedAgainAfterReconnectMsKeepsNoRequestWaiting) {
  SynDropper dropper;
  const std::vector<CacheServer> servers = {ServerAt(a_), LoopbackServer(dropper.port)};
  KeyPlacement placement(servers, Distribution::kKetama);
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 5; ++i) {
    std::string k = "route:proto=imap;user=u" + std::to_string(i);
    if (placement.Pick(k, [](size_t) { return true; }) == 1) keys.push_back(k);
  }
  MemcacheOptions o = Options(servers);
  o.timeout_ms = 1000;
  o.reconnect_ms = 200;
  MemcacheClient c(o);
  std::vector<McReply> r = RunUntilComplete(*reactor_, GetsBeforeAndAfterTheRetryTime(&c, keys));
  ASSERT_EQ(r.size(), 6u);
  // The server's first connect timed out: its request was placed again, on the live one.
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_TRUE(r[i].ok()) << i;
    EXPECT_EQ(r[i].server, 0) << i;
  }
  EXPECT_GE(c.stats().servers_marked_bad, 1u);  // by its connect, or the fetch timeout
}

Task<McReply> GetOnce(MemcacheClient* c) {
  McReply r = co_await c->Get("k");
  co_await c->Close();
  co_return r;
}

TEST_F(MemcacheClientTest, NoServerReachableIsUnavailableNotAHang) {
  CacheServer dead = *ParseCacheServer("127.0.0.1:" + std::to_string(testing::FreePort()));
  MemcacheClient c(Options({dead}));
  McReply r = RunUntilComplete(*reactor_, GetOnce(&c));
  EXPECT_EQ(r.error, McError::kUnavailable);
  EXPECT_EQ(c.stats().connect_failures, 1u);
  EXPECT_FALSE(c.ServerUsable(0));
}

Task<std::pair<McReply, int64_t>> GetFromSilentServer(MemcacheClient* c) {
  int64_t start = MonotonicNowNs();
  McReply r = co_await c->Get("k");
  int64_t took = (MonotonicNowNs() - start) / 1'000'000;
  co_await c->Close();
  co_return std::make_pair(std::move(r), took);
}

TEST_F(MemcacheClientTest, ASilentServerTimesOut) {
  // A listener that accepts (kernel backlog) but never answers.
  uint16_t port = 0;
  UniqueFd silent = testing::ListenLoopback(&port);
  const CacheServer s = LoopbackServer(port);
  MemcacheOptions o = Options({s});
  o.timeout_ms = 300;
  MemcacheClient c(o);
  auto [r, took] = RunUntilComplete(*reactor_, GetFromSilentServer(&c));
  EXPECT_EQ(r.error, McError::kUnavailable);
  EXPECT_GE(took, 290);
  EXPECT_LT(took, 2000);
  EXPECT_EQ(c.stats().timeouts, 1u);
}

// A server that stops answering fails what waits on it as "again": each such request is
// placed once more, on the server still up, instead of failing (the spec's §2.1, §3.2).
TEST_F(MemcacheClientTest, RequestsOfAServerGoneBadArePlacedOnAnotherOne) {
  uint16_t port = 0;
  UniqueFd silent = testing::ListenLoopback(&port);
  MemcacheOptions o = Options({ServerAt(a_), LoopbackServer(port)});
  o.timeout_ms = 300;
  MemcacheClient c(o);
  auto run = [](MemcacheClient* c) -> Task<std::vector<McReply>> {
    std::vector<McReply> out(16);
    Gate gate;
    auto one = [](MemcacheClient* c, McReply* r, int i, Gate::Holder) -> Task<void> {
      *r = co_await c->Set("key" + std::to_string(i), "v", 60);
    };
    for (int i = 0; i < 16; ++i) Spawn(one(c, &out[static_cast<size_t>(i)], i, gate.Enter()));
    co_await gate.Wait();
    co_await c->Close();
    co_return out;
  };
  const std::vector<McReply> got = RunUntilComplete(*reactor_, run(&c));
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(got[i].hit()) << "key" << i;
    EXPECT_EQ(got[i].server, 0) << "key" << i;
  }
  // Some keys were placed on the silent server first.
  EXPECT_EQ(c.stats().timeouts, 1u);
  EXPECT_EQ(c.stats().servers_marked_bad, 1u);
}

TEST_F(MemcacheClientTest, AGarbageAnswerIsAProtocolError) {
  // A server that answers a request with 24 bytes that are no binary-protocol header.
  uint16_t port = 0;
  UniqueFd listener = testing::ListenLoopback(&port);
  std::thread server([fd = listener.get()] {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return;
    const int c = accept4(fd, nullptr, nullptr, 0);  // blocking, unlike the listener
    if (c < 0) return;
    char buf[256];
    if (recv(c, buf, sizeof(buf), 0) > 0) {
      const std::string garbage(24, 'x');
      (void)send(c, garbage.data(), garbage.size(), MSG_NOSIGNAL);
    }
    recv(c, buf, sizeof(buf), 0);  // until the client lets go
    close(c);
  });
  const CacheServer s = LoopbackServer(port);
  MemcacheClient c(Options({s}));
  auto [r, took] = RunUntilComplete(*reactor_, GetFromSilentServer(&c));
  server.join();
  EXPECT_EQ(r.error, McError::kProtocol);
  EXPECT_EQ(c.stats().unavailable, 0u);
  EXPECT_EQ(c.stats().servers_marked_bad, 1u);
}

Task<std::pair<McReply, McReply>> SetIntoSilenceThenGet(MemcacheClient* c) {
  // The 8 MiB value fills the socket: the writer still waits in send when the reader
  // gives up on the server, and its cancelled send comes back a loop turn later.
  McReply set = co_await c->Set("big", std::string(8 << 20, 'v'), 60);
  // At once (reconnect_ms = 0): a new connection for this Get.
  McReply get = co_await c->Get("k");
  co_await c->Close();
  co_return std::make_pair(std::move(set), std::move(get));
}

TEST_F(MemcacheClientTest, ALateErrorOfTheOldConnectionDoesNotFailTheNewOne) {
  uint16_t port = 0;
  UniqueFd listener = testing::ListenLoopback(&port);
  std::thread server([fd = listener.get()] {
    auto accept_one = [fd] {
      pollfd p{fd, POLLIN, 0};
      return poll(&p, 1, 5000) == 1 ? accept4(fd, nullptr, nullptr, 0) : -1;
    };
    const int silent = accept_one();  // never reads; answers garbage after 100 ms
    if (silent >= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const std::string garbage(24, 'x');
      (void)send(silent, garbage.data(), garbage.size(), MSG_NOSIGNAL);
    }
    const int second = accept_one();
    if (second >= 0) {
      // One GETK: answer "not found" (status 1) with its opcode and opaque.
      unsigned char h[24];
      if (recv(second, h, sizeof(h), MSG_WAITALL) == sizeof(h)) {
        const uint32_t body =
            (uint32_t{h[8]} << 24) | (uint32_t{h[9]} << 16) | (uint32_t{h[10]} << 8) | h[11];
        std::string rest(body, '\0');
        (void)recv(second, rest.data(), rest.size(), MSG_WAITALL);
        unsigned char r[24] = {0x81, h[1]};
        r[7] = 1;
        std::copy(h + 12, h + 16, r + 12);
        (void)send(second, r, sizeof(r), MSG_NOSIGNAL);
      }
      char buf[256];
      while (recv(second, buf, sizeof(buf), 0) > 0) {
      }  // until the client lets go
      close(second);
    }
    if (silent >= 0) close(silent);
  });
  const CacheServer s = LoopbackServer(port);
  MemcacheOptions o = Options({s});
  o.timeout_ms = 2000;
  o.reconnect_ms = 0;
  MemcacheClient c(o);
  auto [set, get] = RunUntilComplete(*reactor_, SetIntoSilenceThenGet(&c));
  server.join();
  EXPECT_EQ(set.error, McError::kProtocol);
  EXPECT_TRUE(get.ok()) << "the Get failed with the old connection";
  EXPECT_EQ(get.status, 1);  // not found
  EXPECT_EQ(c.stats().servers_marked_bad, 1u);
  EXPECT_EQ(c.stats().connects, 2u);
}

}  // namespace
}  // namespace ringproxy
