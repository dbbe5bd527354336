// Login throttling against a real memcached: exact at the limit even when two
// proxies (two Throttle instances, two connections) count at once; whitelist with its
// memo key; the user throttle under the canonical name; failing open or closed.
#include "route/throttle.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/sync.h"
#include "gtest/gtest.h"
#include "route/keys.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

MemcacheOptions McAt(uint16_t port) {
  MemcacheOptions o;
  o.servers = {*ParseCacheServer("127.0.0.1:" + std::to_string(port))};
  o.timeout_ms = 1000;
  return o;
}

class ThrottleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = testing::MakeReactor();
    ASSERT_TRUE(mc_.Start());
  }
  std::unique_ptr<Reactor> reactor_;
  testing::Memcached mc_;
};

Task<int> Race(Throttle* a, Throttle* b, int attempts) {
  Gate gate;
  int allowed = 0;
  auto one = [](Throttle* t, int* allowed, Gate::Holder) -> Task<void> {
    ThrottleDecision d = co_await t->CheckIp("imap", "198.51.100.7");
    if (d.allowed()) ++*allowed;
  };
  for (int i = 0; i < attempts; ++i) Spawn(one(i % 2 == 0 ? a : b, &allowed, gate.Enter()));
  co_await gate.Wait();
  co_return allowed;
}

TEST_F(ThrottleTest, IpLimitIsExactAcrossTwoProxies) {
  MemcacheClient m1(McAt(mc_.port())), m2(McAt(mc_.port()));
  ThrottleOptions o;
  o.ip_max = 10;
  Throttle a(o, &m1), b(o, &m2);
  int allowed = RunUntilComplete(*reactor_, Race(&a, &b, 40));
  EXPECT_EQ(allowed, 10);
  // POP3 counts separately ("throttle:proto=p,..."), IMAP stays over the limit.
  auto more = [](Throttle* t, MemcacheClient* m1,
                 MemcacheClient* m2) -> Task<std::vector<ThrottleDecision>> {
    std::vector<ThrottleDecision> out;
    out.push_back(co_await t->CheckIp("pop3", "198.51.100.7"));
    out.push_back(co_await t->CheckIp("imapssl", "198.51.100.7"));
    out.push_back(co_await t->CheckIp("imap", "198.51.100.8"));
    co_await m1->Close();
    co_await m2->Close();
    co_return out;
  };
  auto r = RunUntilComplete(*reactor_, more(&a, &m1, &m2));
  EXPECT_TRUE(r[0].allowed());
  EXPECT_EQ(r[0].count, 1u);
  EXPECT_FALSE(r[1].allowed());
  EXPECT_EQ(r[1].message, "Login rejected from this IP");
  EXPECT_EQ(r[1].count, 41u);
  EXPECT_TRUE(r[2].allowed());
}

// memcached creates a counter on INCREMENT as a miss followed by an add: of two
// proxies creating the same counter at once, one gets NOT_STORED. That attempt must be
// counted all the same, not taken for memcached being unavailable.
struct RaceTally {
  int unavailable = 0;
  int first_counts_lost = 0;  // counters that ended below the number of attempts
};

Task<RaceTally> RaceFreshCounters(std::vector<Throttle*> proxies, int keys,
                                  std::vector<MemcacheClient*> clients) {
  RaceTally tally;
  for (int k = 0; k < keys; ++k) {
    const std::string ip = "10.9." + std::to_string(k / 250) + "." + std::to_string(k % 250);
    Gate gate;
    std::vector<ThrottleDecision> got(proxies.size());
    auto one = [](Throttle* t, std::string ip, ThrottleDecision* out, Gate::Holder) -> Task<void> {
      *out = co_await t->CheckIp("imap", ip);
    };
    for (size_t i = 0; i < proxies.size(); ++i) {
      Spawn(one(proxies[i], ip, &got[i], gate.Enter()));
    }
    co_await gate.Wait();
    uint64_t highest = 0;
    for (const ThrottleDecision& d : got) {
      tally.unavailable += d.unavailable ? 1 : 0;
      highest = std::max(highest, d.count);
    }
    if (highest != proxies.size()) ++tally.first_counts_lost;
  }
  for (MemcacheClient* c : clients) co_await c->Close();
  co_return tally;
}

TEST_F(ThrottleTest, ACounterThatTwoProxiesCreateAtOnceCountsBoth) {
  testing::Memcached parallel;
  ASSERT_TRUE(parallel.Start(/*threads=*/4));
  std::vector<std::unique_ptr<MemcacheClient>> clients;
  std::vector<std::unique_ptr<Throttle>> proxies;
  ThrottleOptions o;
  o.ip_max = 100;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<MemcacheClient>(McAt(parallel.port())));
    proxies.push_back(std::make_unique<Throttle>(o, clients.back().get()));
  }
  std::vector<Throttle*> p;
  std::vector<MemcacheClient*> c;
  for (auto& t : proxies) p.push_back(t.get());
  for (auto& m : clients) c.push_back(m.get());
  RaceTally t = RunUntilComplete(*reactor_, RaceFreshCounters(p, 1500, c));
  EXPECT_EQ(t.unavailable, 0) << "a raced creation was taken for memcached being down";
  EXPECT_EQ(t.first_counts_lost, 0);
}

TEST_F(ThrottleTest, ProtocolLimitOverridesTheGenericOne) {
  MemcacheClient m(McAt(mc_.port()));
  ThrottleOptions o;
  o.ip_max = 100;
  o.pop3_max = 2;
  Throttle t(o, &m);
  auto run = [](Throttle* t, MemcacheClient* m) -> Task<std::vector<bool>> {
    std::vector<bool> out;
    for (int i = 0; i < 3; ++i) out.push_back((co_await t->CheckIp("pop3", "10.0.0.1")).allowed());
    for (int i = 0; i < 3; ++i) out.push_back((co_await t->CheckIp("imap", "10.0.0.1")).allowed());
    co_await m->Close();
    co_return out;
  };
  EXPECT_EQ(RunUntilComplete(*reactor_, run(&t, &m)),
            (std::vector<bool>{true, true, false, true, true, true}));
}

TEST_F(ThrottleTest, TheGenericLimitCountsInTheProtocolsWindow) {
  // ip_max applies (imap_max is 0), but the counter is IMAP's and lasts imap_ttl_s, as
  // the counter Zimbra's proxy writes to the same memcached.
  MemcacheClient m(McAt(mc_.port()));
  ThrottleOptions o;
  o.ip_max = 1;
  o.ip_ttl_s = 1;
  o.imap_ttl_s = 3600;
  Throttle t(o, &m);
  auto run = [](Throttle* t, MemcacheClient* m) -> Task<std::vector<bool>> {
    std::vector<bool> out;
    for (int i = 0; i < 2; ++i) out.push_back((co_await t->CheckIp("imap", "10.0.0.9")).allowed());
    co_await Sleep(Deadline::AfterMs(2500));  // past ip_ttl_s
    out.push_back((co_await t->CheckIp("imap", "10.0.0.9")).allowed());
    co_await m->Close();
    co_return out;
  };
  EXPECT_EQ(RunUntilComplete(*reactor_, run(&t, &m)), (std::vector<bool>{true, false, false}));
}

TEST_F(ThrottleTest, WhitelistedNetworksAreNotCountedAndTheMemoIsWritten) {
  MemcacheClient m(McAt(mc_.port()));
  ThrottleOptions o;
  o.ip_max = 1;
  o.whitelist = {*Cidr::Parse("10.0.0.0/8"), *Cidr::Parse("2001:db8::/32")};
  Throttle t(o, &m);
  auto run = [](Throttle* t, MemcacheClient* m) -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    for (int i = 0; i < 3; ++i) {
      out.push_back((co_await t->CheckIp("imap", "10.1.2.3")).allowed() ? "allow" : "deny");
    }
    out.push_back((co_await t->CheckIp("imap", "2001:db8::1")).allowed() ? "allow" : "deny");
    out.push_back((co_await t->CheckIp("imap", "192.0.2.1")).allowed() ? "allow" : "deny");
    out.push_back((co_await t->CheckIp("imap", "192.0.2.1")).allowed() ? "allow" : "deny");
    out.push_back((co_await m->Get("whitelist:ip=10.1.2.3")).value);
    out.push_back((co_await m->Get("whitelist:ip=192.0.2.1")).value);
    co_await m->Close();
    co_return out;
  };
  EXPECT_EQ(
      RunUntilComplete(*reactor_, run(&t, &m)),
      (std::vector<std::string>{"allow", "allow", "allow", "allow", "allow", "deny", "1", "0"}));
}

// That the caller passes the canonical account, not the name typed, is the mail e2e
// test user_throttle_exactly_at_its_limit_shared_by_two_proxies.
TEST_F(ThrottleTest, UserLimitCountsSuccessfulLoginsUnderTheNameGiven) {
  MemcacheClient m(McAt(mc_.port()));
  ThrottleOptions o;
  o.user_max = 2;
  Throttle t(o, &m);
  auto run = [](Throttle* t, MemcacheClient* m) -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    // One account however its name's case was typed (a lookup may answer as typed).
    for (const char* name : {"john@example.com", "John@Example.com", "JOHN@EXAMPLE.COM"}) {
      ThrottleDecision pre = co_await t->CheckUser(name);
      if (!pre.allowed()) {
        out.push_back("denied before login");
        continue;
      }
      ThrottleDecision post = co_await t->CountUserLogin(name);
      out.push_back(post.allowed() ? "login" : "denied after login");
    }
    out.push_back((co_await m->Get("throttle:user=john@example.com")).value);
    co_await m->Close();
    co_return out;
  };
  EXPECT_EQ(RunUntilComplete(*reactor_, run(&t, &m)),
            (std::vector<std::string>{"login", "login", "denied before login", "2"}));
}

TEST_F(ThrottleTest, MemcachedDownFailsOpenOrClosedAsConfigured) {
  mc_.Stop();
  MemcacheClient m(McAt(mc_.port()));
  ThrottleOptions open;
  open.ip_max = 1;
  open.user_max = 1;
  ThrottleOptions closed = open;
  closed.fail_open = false;
  Throttle a(open, &m), b(closed, &m);
  auto run = [](Throttle* a, Throttle* b, MemcacheClient* m) -> Task<std::vector<bool>> {
    std::vector<bool> out;
    ThrottleDecision x = co_await a->CheckIp("imap", "1.2.3.4");
    out.push_back(x.allowed());
    out.push_back(x.unavailable);
    out.push_back((co_await b->CheckIp("imap", "1.2.3.4")).allowed());
    out.push_back((co_await a->CountUserLogin("u@x")).allowed());
    out.push_back((co_await b->CheckUser("u@x")).allowed());
    co_await m->Close();
    co_return out;
  };
  EXPECT_EQ(RunUntilComplete(*reactor_, run(&a, &b, &m)),
            (std::vector<bool>{true, true, false, true, false}));
}

// memcached answering with an error status (here: INCR of a value that is not a
// number) is not a working counter store: logged, and fail_open decides, as when it is down.
TEST_F(ThrottleTest, AnErrorStatusIsLoggedAndTreatedAsUnavailable) {
  MemcacheClient m(McAt(mc_.port()));
  ThrottleOptions closed;
  closed.ip_max = 5;
  closed.fail_open = false;
  Throttle t(closed, &m);
  auto run = [](Throttle* t, MemcacheClient* m) -> Task<std::vector<bool>> {
    std::vector<bool> out;
    out.push_back((co_await m->Set(keys::IpThrottle("imap", "1.2.3.4"), "x", 0)).hit());
    ThrottleDecision d = co_await t->CheckIp("imap", "1.2.3.4");
    out.push_back(d.allowed());
    out.push_back(d.unavailable);
    // Another client's counter works: the first one's status is not memcached's state.
    out.push_back((co_await t->CheckIp("imap", "5.6.7.8")).allowed());
    out.push_back((co_await t->CheckIp("imap", "1.2.3.4")).allowed());
    co_await m->Close();
    co_return out;
  };
  ::testing::internal::CaptureStderr();
  std::vector<bool> got = RunUntilComplete(*reactor_, run(&t, &m));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(got, (std::vector<bool>{true, false, true, true, false}));
  // Logged once (not once per login), and no "answers again" in between.
  EXPECT_EQ(log.find("throttle: memcached answers '"), log.rfind("throttle: memcached answers '"))
      << log;
  EXPECT_EQ(log.find("answers again"), std::string::npos) << log;
  EXPECT_NE(log.find("throttle: memcached answers 'incr/decr on a non-numeric value' (status "
                     "0x06); logins it concerns are refused without counting"),
            std::string::npos)
      << log;
}

TEST(CidrTest, Matching) {
  EXPECT_TRUE(Cidr::Parse("10.0.0.0/8")->Contains("10.255.0.1"));
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/8")->Contains("11.0.0.1"));
  EXPECT_TRUE(Cidr::Parse("192.0.2.128/25")->Contains("192.0.2.200"));
  EXPECT_FALSE(Cidr::Parse("192.0.2.128/25")->Contains("192.0.2.127"));
  EXPECT_TRUE(Cidr::Parse("192.0.2.7")->Contains("192.0.2.7"));
  EXPECT_FALSE(Cidr::Parse("192.0.2.7")->Contains("192.0.2.8"));
  EXPECT_TRUE(Cidr::Parse("2001:db8::/32")->Contains("2001:db8:1::5"));
  EXPECT_FALSE(Cidr::Parse("2001:db8::/32")->Contains("10.0.0.1"));
  EXPECT_TRUE(Cidr::Parse("0.0.0.0/0")->Contains("8.8.8.8"));
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/33").ok());
  EXPECT_FALSE(Cidr::Parse("not-an-ip").ok());
}

TEST(CidrTest, AnIpv4MappedRangeMatchesIpv4Clients) {
  // Clients of a dual-stack listener are seen as IPv4 ("10.1.2.3", not "::ffff:...").
  EXPECT_TRUE(Cidr::Parse("::ffff:10.0.0.0/104")->Contains("10.1.2.3"));
  EXPECT_FALSE(Cidr::Parse("::ffff:10.0.0.0/104")->Contains("11.1.2.3"));
  EXPECT_TRUE(Cidr::Parse("::ffff:192.0.2.7")->Contains("192.0.2.7"));
  EXPECT_TRUE(Cidr::Parse("::ffff:0:0/96")->Contains("8.8.8.8"));
  EXPECT_FALSE(Cidr::Parse("::/8")->Contains("10.1.2.3"));
}

}  // namespace
}  // namespace ringproxy
