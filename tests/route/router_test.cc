// Route resolution end to end on one shard: per-core cache, real memcached (Zimbra's
// keys and values checked byte for byte), real lookupd (its request log counts the
// lookups), single flight, a memcached server dying mid-run, refusals and Forget().
#include "route/router.h"

#include <string>
#include <vector>

#include "core/ops.h"
#include "core/sync.h"
#include "gtest/gtest.h"
#include "tests/route/live_fixture.h"

namespace ringproxy {
namespace {

CacheServer ServerAt(uint16_t port) {
  return *ParseCacheServer("127.0.0.1:" + std::to_string(port));
}

ResolveRequest Mail(std::string login, std::string protocol = "imap") {
  ResolveRequest r;
  r.login = std::move(login);
  r.protocol = std::move(protocol);
  r.client_ip = "198.51.100.7";
  r.local_ip = "127.0.0.1";
  return r;
}

ResolveRequest Web(std::string login, std::string vhost) {
  ResolveRequest r = Mail(std::move(login), "http");
  r.web = true;
  r.vhost = std::move(vhost);
  return r;
}

// One shard's route stack over the given memcached servers and lookupd.
struct Stack {
  Stack(std::vector<uint16_t> memcached, uint16_t lookupd, RouterOptions ro = {}) {
    MemcacheOptions mo;
    for (uint16_t p : memcached) mo.servers.push_back(ServerAt(p));
    mo.timeout_ms = 1000;
    memcache = std::make_unique<MemcacheClient>(mo);
    LookupOptions lo;
    LookupHandler h;
    h.text = "127.0.0.1:" + std::to_string(lookupd);
    h.address = *SocketAddress::Parse(h.text);
    lo.handlers = {h};
    lookup = std::make_unique<LookupClient>(lo);
    router =
        std::make_unique<Router>(ro, memcached.empty() ? nullptr : memcache.get(), lookup.get());
  }
  Task<void> Close() {
    co_await router->Drain();
    co_await memcache->Close();
    lookup->Close();
  }
  std::unique_ptr<MemcacheClient> memcache;
  std::unique_ptr<LookupClient> lookup;
  std::unique_ptr<Router> router;
};

using RouterTest = testing::LiveRouteTest;

Task<std::vector<ResolveResult>> ResolveAll(Stack* s, std::vector<ResolveRequest> reqs) {
  std::vector<ResolveResult> out;
  for (ResolveRequest& r : reqs) out.push_back(co_await s->router->Resolve(std::move(r)));
  co_await s->router->Drain();
  co_return out;
}

Task<std::vector<McReply>> GetKeys(Stack* s, std::vector<std::string> keys) {
  std::vector<McReply> out;
  for (std::string& k : keys) out.push_back(co_await s->memcache->Get(std::move(k)));
  co_return out;
}

TEST_F(RouterTest, MissThenMemcachedThenLocalCache) {
  Stack a({mc_.port()}, lookupd_.port());
  auto first = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("jd"), Mail("jd")}));
  ASSERT_EQ(first[0].status, ResolveStatus::kOk) << first[0].reason;
  EXPECT_EQ(first[0].source, RouteSource::kLookup);
  EXPECT_EQ(first[0].server, "127.0.0.1");
  EXPECT_EQ(first[0].port, 7143);
  EXPECT_EQ(first[0].account, "john@example.com");
  EXPECT_EQ(first[1].source, RouteSource::kLocalCache);
  EXPECT_EQ(lookupd_.Requests(), 1);
  // What another proxy (or Zimbra's) would find in memcached, byte for byte.
  auto cached = RunUntilComplete(*reactor_, GetKeys(&a, {"route:proto=imap;user=john@example.com",
                                                         "alias:user=jd;ip=127.0.0.1"}));
  EXPECT_EQ(cached[0].value, "127.0.0.1:7143");
  EXPECT_EQ(cached[1].value, "john@example.com");
  RunUntilComplete(*reactor_, a.Close());
  // A second proxy (empty local cache) finds the route in memcached: no lookup.
  Stack b({mc_.port()}, lookupd_.port());
  auto second = RunUntilComplete(*reactor_, ResolveAll(&b, {Mail("jd")}));
  EXPECT_EQ(second[0].source, RouteSource::kMemcache);
  EXPECT_EQ(second[0].account, "john@example.com");
  EXPECT_EQ(second[0].port, 7143);
  EXPECT_EQ(lookupd_.Requests(), 1);
  RunUntilComplete(*reactor_, b.Close());
}

TEST_F(RouterTest, ALocalCacheSizeOfZeroKeepsNothingPerCore) {
  Stack a({mc_.port()}, lookupd_.port());
  RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("john@example.com")}));
  RunUntilComplete(*reactor_, a.Close());
  RouterOptions ro;
  ro.local_cache_size = 0;
  Stack b({mc_.port()}, lookupd_.port(), ro);
  auto r = RunUntilComplete(*reactor_,
                            ResolveAll(&b, {Mail("john@example.com"), Mail("john@example.com")}));
  ASSERT_EQ(r[0].status, ResolveStatus::kOk) << r[0].reason;
  EXPECT_EQ(r[0].source, RouteSource::kMemcache);
  // Every resolution asks memcached, so a purge there takes effect at once.
  EXPECT_EQ(r[1].source, RouteSource::kMemcache);
  EXPECT_EQ(b.router->local_cache_size(), 0u);
  RunUntilComplete(*reactor_, b.Close());
}

// Zimbra caches "john -> john@<default domain>" under the local IP when a client logs in
// as john@<default domain> (spec §2.2). On a virtual IP of another domain the lookup
// service completes "john" with that domain, so the cached alias would send john@other.org
// to john@example.com's mailbox. Not written: "john" there is looked up.
TEST_F(RouterTest, ALoginAsTheAccountCachesNoLocalPartAliasThatAVirtualIpWouldContradict) {
  Stack a({mc_.port()}, lookupd_.port());
  ResolveRequest qualified = Mail("john@example.com", "pop3");
  qualified.local_ip = "127.0.0.2";
  ResolveRequest unqualified = Mail("john", "pop3");
  unqualified.local_ip = "127.0.0.2";
  auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {qualified, unqualified}));
  ASSERT_EQ(r[0].status, ResolveStatus::kOk) << r[0].reason;
  EXPECT_EQ(r[0].account, "john@example.com");
  ASSERT_EQ(r[1].status, ResolveStatus::kOk) << r[1].reason;
  EXPECT_EQ(r[1].account, "john@other.org");
  EXPECT_EQ(r[1].server, "127.0.0.2");
  EXPECT_EQ(r[1].source, RouteSource::kLookup);
  auto cached = RunUntilComplete(*reactor_, GetKeys(&a, {"alias:user=john;ip=127.0.0.2"}));
  EXPECT_NE(cached[0].value, "john@example.com");
  RunUntilComplete(*reactor_, a.Close());
}

TEST_F(RouterTest, AddNeverOverwritesAnotherProxysEntry) {
  Stack a({mc_.port()}, lookupd_.port());
  auto pre = [](Stack* s) -> Task<void> {
    (void)co_await s->memcache->Add("route:proto=imap;user=john@example.com", "10.9.9.9:993", 60);
    (void)co_await s->memcache->Add("alias:user=jd;ip=127.0.0.1", "john@example.com", 60);
  };
  RunUntilComplete(*reactor_, pre(&a));
  auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("jd")}));
  EXPECT_EQ(r[0].source, RouteSource::kMemcache);
  EXPECT_EQ(r[0].server, "10.9.9.9");  // what memcached had, not a fresh lookup
  EXPECT_EQ(lookupd_.Requests(), 0);
  RunUntilComplete(*reactor_, a.Close());
}

// An account with a % in its name: the alias value is stored as Auth-User came,
// %-escaped, as Zimbra's proxies store and read it (spec §1.3, §2.2).
TEST_F(RouterTest, AliasValuesAreKeptEscapedAsZimbraKeepsThem) {
  Stack a({mc_.port()}, lookupd_.port());
  auto first = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("ob")}));
  ASSERT_EQ(first[0].status, ResolveStatus::kOk) << first[0].reason;
  EXPECT_EQ(first[0].account, "o%brien@example.com");
  auto cached = RunUntilComplete(
      *reactor_,
      GetKeys(&a, {"alias:user=ob;ip=127.0.0.1", "route:proto=imap;user=o%25brien@example.com"}));
  EXPECT_EQ(cached[0].value, "o%25brien@example.com");
  EXPECT_EQ(cached[1].value, "127.0.0.1:7143");
  RunUntilComplete(*reactor_, a.Close());
  // What a Zimbra proxy wrote is read the same way: a memcached hit, no lookup.
  Stack b({mc_.port()}, lookupd_.port());
  auto second = RunUntilComplete(*reactor_, ResolveAll(&b, {Mail("ob")}));
  EXPECT_EQ(second[0].source, RouteSource::kMemcache);
  EXPECT_EQ(second[0].account, "o%brien@example.com");
  EXPECT_EQ(lookupd_.Requests(), 1);
  RunUntilComplete(*reactor_, b.Close());
}

Task<int> ManyAtOnce(Stack* s, int n) {
  Gate gate;
  int ok = 0;
  auto one = [](Stack* s, int* ok, Gate::Holder) -> Task<void> {
    ResolveResult r = co_await s->router->Resolve(Mail("johnny@example.com"));
    if (r.status == ResolveStatus::kOk && r.port == 7143) ++*ok;
  };
  for (int i = 0; i < n; ++i) Spawn(one(s, &ok, gate.Enter()));
  co_await gate.Wait();
  co_await s->Close();
  co_return ok;
}

TEST_F(RouterTest, HundredConcurrentResolutionsOfOneKeyMakeOneLookup) {
  Stack a({mc_.port()}, lookupd_.port());
  EXPECT_EQ(RunUntilComplete(*reactor_, ManyAtOnce(&a, 100)), 100);
  EXPECT_EQ(lookupd_.Requests(), 1);
  EXPECT_EQ(a.router->stats().lookups, 1u);
  EXPECT_EQ(a.router->stats().joined, 99u);
}

TEST_F(RouterTest, RefusalIsCachedBrieflyAndNotStoredInMemcached) {
  RouterOptions ro;
  ro.negative_ttl_ms = 200;
  Stack a({mc_.port()}, lookupd_.port(), ro);
  auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("ghost"), Mail("ghost")}));
  EXPECT_EQ(r[0].status, ResolveStatus::kLoginFailed);
  EXPECT_EQ(r[0].reason, "user not found:ghost@example.com");
  EXPECT_EQ(r[0].wait_s, 3);
  EXPECT_EQ(r[1].status, ResolveStatus::kLoginFailed);
  EXPECT_EQ(r[1].source, RouteSource::kLocalCache);
  EXPECT_EQ(lookupd_.Requests(), 1);
  // Another client's attempt is not answered by this client's refusal: the service
  // may refuse by client address.
  ResolveRequest other = Mail("ghost");
  other.client_ip = "203.0.113.9";
  auto elsewhere = RunUntilComplete(*reactor_, ResolveAll(&a, {other}));
  EXPECT_EQ(elsewhere[0].status, ResolveStatus::kLoginFailed);
  EXPECT_EQ(elsewhere[0].source, RouteSource::kLookup);
  EXPECT_EQ(lookupd_.Requests(), 2);
  usleep(250000);
  auto again = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("ghost")}));
  EXPECT_EQ(again[0].source, RouteSource::kLookup);
  EXPECT_EQ(lookupd_.Requests(), 3);
  RunUntilComplete(*reactor_, a.Close());
}

Task<std::vector<McReply>> ForgetThenCheck(Stack* s) {
  ResolveResult r = co_await s->router->Resolve(Mail("jd"));
  co_await s->router->Drain();
  s->router->Forget(r);
  co_await s->router->Drain();
  std::vector<McReply> out;
  out.push_back(co_await s->memcache->Get("route:proto=imap;user=john@example.com"));
  out.push_back(co_await s->memcache->Get("alias:user=jd;ip=127.0.0.1"));
  co_return out;
}

TEST_F(RouterTest, ForgetDeletesTheAliasAndRouteKeys) {
  Stack a({mc_.port()}, lookupd_.port());
  auto r = RunUntilComplete(*reactor_, ForgetThenCheck(&a));
  EXPECT_FALSE(r[0].hit());
  EXPECT_FALSE(r[1].hit());
  auto again = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("jd")}));
  EXPECT_EQ(again[0].source, RouteSource::kLookup);  // not from the local cache either
  RunUntilComplete(*reactor_, a.Close());
}

Task<bool> ForgetWithTheAliasServerStalled(Stack* s, testing::Memcached* alias_server,
                                           MemcacheClient* other) {
  ResolveResult r = co_await s->router->Resolve(Mail("jd"));
  co_await s->router->Drain();
  alias_server->Pause();
  s->router->Forget(r);
  // Well within the stalled delete's timeout (1 s): the route's own delete is done.
  co_await Sleep(Deadline::AfterMs(300));
  const bool route_gone = !(co_await other->Get(r.route_key)).hit();
  alias_server->Resume();
  co_await s->router->Drain();
  co_await other->Close();
  co_return route_gone;
}

// The alias and route keys live on different servers, one of them stalled: the other's
// delete does not wait for it (else the stale route is read meanwhile, elsewhere).
TEST_F(RouterTest, ForgetDeletesOnEveryServerAtOnce) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    testing::Memcached first, second;
    ASSERT_TRUE(first.Start() && second.Start());
    Stack a({first.port(), second.port()}, lookupd_.port());
    const int alias_at = a.memcache->ServerFor("alias:user=jd;ip=127.0.0.1");
    if (alias_at == a.memcache->ServerFor("route:proto=imap;user=john@example.com")) {
      RunUntilComplete(*reactor_, a.Close());
      continue;  // ports are random: try a pair that places the keys apart
    }
    MemcacheOptions mo;
    mo.servers = {ServerAt(first.port()), ServerAt(second.port())};
    MemcacheClient other(mo);
    EXPECT_TRUE(RunUntilComplete(
        *reactor_, ForgetWithTheAliasServerStalled(&a, alias_at == 0 ? &first : &second, &other)));
    RunUntilComplete(*reactor_, a.Close());
    return;
  }
  FAIL() << "no pair of servers placed the two keys apart";
}

// The mailbox server refused a login by an alias the service may not cache: the route
// kept under the name as typed goes as well, so the next login asks again.
TEST_F(RouterTest, ForgetDropsTheRouteKeptUnderTheTypedName) {
  Stack a({mc_.port()}, lookupd_.port());
  for (int round = 0; round < 2; ++round) {
    // Round 0: the route came from the lookup; round 1: from the per-core cache.
    auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("m@other.org")}));
    ASSERT_EQ(r[0].status, ResolveStatus::kOk) << r[0].reason;
    if (round == 1) {
      auto cached = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("m@other.org")}));
      ASSERT_EQ(cached[0].source, RouteSource::kLocalCache);
      r = cached;
    }
    auto forget = [](Stack* s, ResolveResult r) -> Task<void> {
      s->router->Forget(r);
      co_await s->router->Drain();
    };
    RunUntilComplete(*reactor_, forget(&a, r[0]));
    auto again = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("m@other.org")}));
    EXPECT_EQ(again[0].source, RouteSource::kLookup) << "round " << round;
  }
  RunUntilComplete(*reactor_, a.Close());
}

Task<std::vector<McReply>> InvalidateThenCheck(Stack* s, std::vector<std::string> ips,
                                               std::vector<std::string> keys) {
  // Arguments built by the caller: GCC 12 rejects braced lists of literals inside a
  // coroutine body ("array used as initializer").
  (void)co_await s->router->Resolve(Mail("john@example.com"));
  (void)co_await s->router->Resolve(Mail("john@example.com", "pop3"));
  co_await s->router->Drain();
  co_await s->router->Invalidate("john@example.com", ips);
  std::vector<McReply> out;
  for (const std::string& k : keys) out.push_back(co_await s->memcache->Get(k));
  co_return out;
}

TEST_F(RouterTest, InvalidateDropsEveryKeyOfTheAccount) {
  Stack a({mc_.port()}, lookupd_.port());
  auto r =
      RunUntilComplete(*reactor_, InvalidateThenCheck(&a, {"127.0.0.1"},
                                                      {"route:proto=imap;user=john@example.com",
                                                       "route:proto=pop3;user=john@example.com",
                                                       "alias:user=john;ip=127.0.0.1"}));
  for (const McReply& x : r) EXPECT_FALSE(x.hit());
  EXPECT_EQ(a.router->local_cache_size(), 0u);
  RunUntilComplete(*reactor_, a.Close());
}

Task<ResolveResult> ResolveInvalidateResolve(Stack* s, ResolveRequest typed, std::string account,
                                             std::vector<std::string> ips) {
  (void)co_await s->router->Resolve(typed);
  co_await s->router->Drain();
  co_await s->router->Invalidate(std::move(account), std::move(ips));
  co_return co_await s->router->Resolve(typed);
}

TEST_F(RouterTest, InvalidateDropsTheRouteKeptUnderATypedAlias) {
  // m@other.org is an alias of mary@other.org that may not be cached: its route lives
  // only in the per-core cache, under the name as typed.
  Stack a({mc_.port()}, lookupd_.port());
  const int before = lookupd_.Requests();
  ResolveResult r = RunUntilComplete(
      *reactor_,
      ResolveInvalidateResolve(&a, Mail("m@other.org"), "mary@other.org", {"127.0.0.1"}));
  EXPECT_EQ(r.status, ResolveStatus::kOk);
  EXPECT_EQ(r.account, "mary@other.org");
  EXPECT_EQ(r.source, RouteSource::kLookup);
  EXPECT_EQ(lookupd_.Requests() - before, 2);
  RunUntilComplete(*reactor_, a.Close());
}

TEST_F(RouterTest, GssapiIsNeverCached) {
  Stack a({mc_.port()}, lookupd_.port());
  ResolveRequest g = Mail("john");
  g.method = AuthMethod::kGssapi;
  g.auth_id = "john@EXAMPLE.COM";
  g.admin_user = "zmnginx";
  g.admin_pass = "pw";
  auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {g, g}));
  EXPECT_EQ(r[0].status, ResolveStatus::kOk) << r[0].reason;
  EXPECT_EQ(r[0].auth_pass, "token-11111111-aaaa-4bbb-8ccc-000000000001");
  EXPECT_EQ(r[1].source, RouteSource::kLookup);
  EXPECT_EQ(lookupd_.Requests(), 2);
  EXPECT_EQ(a.router->local_cache_size(), 0u);
  RunUntilComplete(*reactor_, a.Close());
}

TEST_F(RouterTest, WebTokenRoutesById) {
  Stack a({mc_.port()}, lookupd_.port());
  ResolveRequest w;
  w.method = AuthMethod::kZimbraId;
  w.login = "11111111-aaaa-4bbb-8ccc-000000000001";
  w.protocol = "httpssl";
  w.web = true;
  w.vhost = "mail.example.com";
  w.local_ip = "127.0.0.1";
  auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {w}));
  ASSERT_EQ(r[0].status, ResolveStatus::kOk);
  EXPECT_EQ(r[0].port, 8443);
  auto cached = RunUntilComplete(
      *reactor_, GetKeys(&a, {"route:proto=httpssl;id=11111111-aaaa-4bbb-8ccc-000000000001"}));
  EXPECT_EQ(cached[0].value, "127.0.0.1:8443");
  RunUntilComplete(*reactor_, a.Close());
}

Task<int> ResolveManyWhileKilling(Stack* s, testing::Memcached* victim, int n) {
  int failed = 0;
  for (int i = 1; i <= n; ++i) {
    if (i == n / 2) victim->Kill();
    ResolveResult r = co_await s->router->Resolve(Mail("user" + std::to_string(i)));
    if (r.status != ResolveStatus::kOk) ++failed;
  }
  co_await s->Close();
  co_return failed;
}

// A name whose lookup answers Auth-Cache-Alias FALSE (its account is not in the default
// domain): memcached may not hold its alias, yet every answer must name the canonical
// account (the upstream login and the user throttle are keyed on it), whether the lookup,
// the per-core cache or (for a second proxy) memcached answered.
void ExpectCanonicalAccountFromEverySource(Reactor* reactor, uint16_t memcached,
                                           testing::Lookupd* lookupd, ResolveRequest typed,
                                           const std::string& typed_route_key) {
  Stack a({memcached}, lookupd->port());
  auto first = RunUntilComplete(*reactor, ResolveAll(&a, {typed, typed}));
  ASSERT_EQ(first[0].status, ResolveStatus::kOk) << first[0].reason;
  EXPECT_EQ(first[0].source, RouteSource::kLookup);
  EXPECT_EQ(first[0].account, "mary@other.org");
  EXPECT_EQ(first[0].server, "127.0.0.2");
  ASSERT_EQ(first[1].status, ResolveStatus::kOk) << first[1].reason;
  EXPECT_EQ(first[1].source, RouteSource::kLocalCache);
  EXPECT_EQ(first[1].account, "mary@other.org");
  EXPECT_EQ(lookupd->Requests(), 1);
  // memcached holds the account's route; no alias (the service said not to cache it) and
  // no route under the typed name: its value ("IP:port") could not name the account.
  auto cached = RunUntilComplete(
      *reactor, GetKeys(&a, {"route:proto=imap;user=mary@other.org", typed_route_key,
                             "alias:user=" + typed.login + ";ip=" + typed.local_ip}));
  EXPECT_EQ(cached[0].value, "127.0.0.2:7143");
  EXPECT_FALSE(cached[1].hit()) << cached[1].value;
  EXPECT_FALSE(cached[2].hit()) << cached[2].value;
  RunUntilComplete(*reactor, a.Close());
  // A second proxy (empty per-core cache, same memcached).
  Stack b({memcached}, lookupd->port());
  auto second = RunUntilComplete(*reactor, ResolveAll(&b, {typed}));
  ASSERT_EQ(second[0].status, ResolveStatus::kOk) << second[0].reason;
  EXPECT_EQ(second[0].account, "mary@other.org");
  EXPECT_EQ(second[0].source, RouteSource::kLookup);
  EXPECT_EQ(second[0].server, "127.0.0.2");
  RunUntilComplete(*reactor, b.Close());
}

TEST_F(RouterTest, UncacheableAliasResolvesToTheCanonicalAccountFromEverySource) {
  ExpectCanonicalAccountFromEverySource(reactor_.get(), mc_.port(), &lookupd_, Mail("m@other.org"),
                                        "route:proto=imap;user=m@other.org");
}

TEST_F(RouterTest, UncacheableUnqualifiedNameResolvesToTheCanonicalAccountFromEverySource) {
  ResolveRequest typed = Mail("mary");
  typed.local_ip = "127.0.0.2";  // other.org's virtual IP
  ExpectCanonicalAccountFromEverySource(reactor_.get(), mc_.port(), &lookupd_, typed,
                                        "route:proto=imap;user=mary@127.0.0.2");
}

// A route under an unqualified name (Zimbra's proxies write `user=<name>@<IP>` when they
// may not cache the alias) cannot say whose it is: a second proxy asks the service.
TEST_F(RouterTest, RouteUnderAnUnqualifiedNameInMemcachedIsNotTakenForTheAccount) {
  Stack a({mc_.port()}, lookupd_.port());
  auto pre = [](Stack* s) -> Task<void> {
    (void)co_await s->memcache->Add("route:proto=imap;user=mary@127.0.0.2", "127.0.0.2:7143", 60);
  };
  RunUntilComplete(*reactor_, pre(&a));
  ResolveRequest typed = Mail("mary");
  typed.local_ip = "127.0.0.2";
  auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {typed}));
  ASSERT_EQ(r[0].status, ResolveStatus::kOk) << r[0].reason;
  EXPECT_EQ(r[0].account, "mary@other.org");
  EXPECT_EQ(r[0].source, RouteSource::kLookup);
  RunUntilComplete(*reactor_, a.Close());
}

TEST_F(RouterTest, AMemcachedServerDyingMidRunFailsNoResolution) {
  testing::Memcached second;
  ASSERT_TRUE(second.Start());
  Stack a({mc_.port(), second.port()}, lookupd_.port());
  EXPECT_EQ(RunUntilComplete(*reactor_, ResolveManyWhileKilling(&a, &second, 200)), 0);
  EXPECT_EQ(a.memcache->stats().servers_marked_bad, 1u);
  EXPECT_FALSE(a.memcache->ServerUsable(1));
}

TEST_F(RouterTest, NoMemcachedAtAllStillResolves) {
  uint16_t nothing = testing::FreePort();
  Stack a({nothing}, lookupd_.port());
  auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("jd"), Mail("mary@other.org")}));
  EXPECT_EQ(r[0].status, ResolveStatus::kOk);
  EXPECT_EQ(r[1].status, ResolveStatus::kOk) << r[1].reason;
  RunUntilComplete(*reactor_, a.Close());
}

// A web login with CR LF (not escaped on the wire) fails this request only: the lookup
// service is not asked, nothing is cached, the next request is checked afresh.
TEST_F(RouterTest, ALoginTheLookupRequestCannotCarryFailsWithoutAsking) {
  Stack a({mc_.port()}, lookupd_.port());
  const ResolveRequest w = Web("john\r\nX-Evil: 1", "mail.example.com");
  auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {w, w}));
  for (const ResolveResult& x : r) {
    EXPECT_EQ(x.status, ResolveStatus::kInvalidRequest);
    EXPECT_EQ(x.reason, "control character in Auth-User");
  }
  EXPECT_EQ(r[1].source, RouteSource::kLookup);
  EXPECT_EQ(lookupd_.Requests(), 0);
  EXPECT_EQ(a.router->local_cache_size(), 0u);
  RunUntilComplete(*reactor_, a.Close());
}

TEST_F(RouterTest, LookupServiceDownIsUnavailable) {
  lookupd_.Stop();
  Stack a({mc_.port()}, lookupd_.port());
  auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {Mail("jd")}));
  EXPECT_EQ(r[0].status, ResolveStatus::kUnavailable);
  EXPECT_EQ(r[0].reason, "no valid lookup handlers");
  RunUntilComplete(*reactor_, a.Close());
}

// The lookup service completes an unqualified web name from the Host (X-Proxy-Host):
// resolved on one virtual host, it must not answer for another, in the core cache or
// in memcached.
TEST_F(RouterTest, AnUnqualifiedWebNameIsResolvedPerVirtualHost) {
  Stack a({mc_.port()}, lookupd_.port());
  const ResolveRequest other = Web("mary", "mail.other.org");
  const ResolveRequest example = Web("mary", "mail.example.com");
  auto r = RunUntilComplete(*reactor_, ResolveAll(&a, {other, example}));
  ASSERT_EQ(r[0].status, ResolveStatus::kOk) << r[0].reason;
  EXPECT_EQ(r[0].account, "mary@other.org");
  // lookupd would say "user not found:mary@example.com" for the second one.
  EXPECT_NE(r[1].status, ResolveStatus::kOk)
      << "source=" << RouteSourceName(r[1].source) << " account=" << r[1].account
      << " server=" << r[1].server << ":" << r[1].port;
  EXPECT_EQ(lookupd_.Requests(), 2);
  RunUntilComplete(*reactor_, a.Close());
  // Another core (its own cache, the same memcached) on the second host.
  Stack b({mc_.port()}, lookupd_.port());
  auto again = RunUntilComplete(*reactor_, ResolveAll(&b, {example}));
  EXPECT_NE(again[0].status, ResolveStatus::kOk)
      << "source=" << RouteSourceName(again[0].source) << " account=" << again[0].account;
  RunUntilComplete(*reactor_, b.Close());
}

}  // namespace
}  // namespace ringproxy
