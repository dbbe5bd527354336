// The route stack from config (route/config.h, route/stack.h): [lookup], [memcache] and
// [throttle] read with errors that name the key, and a stack built from them resolving
// through a real lookupd and memcached and counting through the throttle.
#include "route/stack.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/route/live_fixture.h"

namespace ringproxy {
namespace {

const ConfigSchema& Schema() {
  static const ConfigSchema* schema = [] {
    auto* s = new ConfigSchema();
    RegisterRouteConfig(s);
    return s;
  }();
  return *schema;
}

std::string Error(std::string_view text) {
  absl::StatusOr<ConfigPtr> c = ParseConfig(text, "t.toml", Schema());
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(RouteConfigTest, LookupServersAsZimbraWritesThem) {
  auto h = ParseLookupHandlers("http://10.0.0.5:7072/service/extension/nginx-lookup");
  ASSERT_TRUE(h.ok() && h->size() == 1) << h.status();
  EXPECT_EQ(h->front().address.ToString(), "10.0.0.5:7072");
  EXPECT_EQ(h->front().path, "/service/extension/nginx-lookup");
  h = ParseLookupHandlers("10.0.0.6");
  ASSERT_TRUE(h.ok() && h->size() == 1) << h.status();
  EXPECT_EQ(h->front().address.ToString(), "10.0.0.6:7072");
  EXPECT_EQ(h->front().path, "/service/extension/nginx-lookup");
  h = ParseLookupHandlers("http://[2001:db8::5]:8080/x");
  ASSERT_TRUE(h.ok() && h->size() == 1) << h.status();
  EXPECT_EQ(h->front().address.ToString(), "[2001:db8::5]:8080");
  EXPECT_EQ(h->front().path, "/x");
  h = ParseLookupHandlers("2001:db8::6");
  ASSERT_TRUE(h.ok() && h->size() == 1) << h.status();
  EXPECT_EQ(h->front().address.ToString(), "[2001:db8::6]:7072");
  EXPECT_FALSE(ParseLookupHandlers("https://10.0.0.5:7072").ok());
  EXPECT_FALSE(ParseLookupHandlers("http://:7072").ok());
  h = ParseLookupHandlers("localhost:7072");  // a name: a handler per address
  ASSERT_TRUE(h.ok() && !h->empty()) << h.status();
  for (const LookupHandler& one : *h) EXPECT_EQ(one.address.port(), 7072);
  EXPECT_FALSE(ParseLookupHandlers("http://10.0.0.5:99999").ok());
  EXPECT_FALSE(ParseLookupHandlers("http://10.0.0.5/a b").ok());
}

TEST(RouteConfigTest, ErrorsNameTheKey) {
  EXPECT_NE(Error("[lookup]\n").find("lookup.servers"), std::string::npos) << Error("[lookup]\n");
  EXPECT_NE(Error("[lookup]\nservers = []\n").find("at least one"), std::string::npos);
  EXPECT_NE(Error("[lookup]\nservers = [\"https://10.0.0.5\"]\n").find("https"), std::string::npos);
  EXPECT_NE(Error("[memcache]\nservers = [\"127.0.0.1:11211\"]\ndistribution = \"crc\"\n")
                .find("memcache.distribution"),
            std::string::npos);
  EXPECT_NE(Error("[memcache]\nservers = [\"127.0.0.1:11211\"]\nttl_s = 2592001\n")
                .find("memcache.ttl_s"),
            std::string::npos);
  EXPECT_NE(Error("[throttle]\nip_max = 10\n").find("add a [memcache] section"), std::string::npos);
  EXPECT_EQ(Error("[throttle]\nip_max = 0\n"), "");  // counts nothing: no memcached needed
  EXPECT_NE(
      Error("[memcache]\nservers = [\"127.0.0.1:1\"]\n[throttle]\nwhitelist = [\"10.0.0.0/33\"]\n")
          .find("throttle.whitelist"),
      std::string::npos);
  EXPECT_NE(Error("[memcache]\nservers = [\"127.0.0.1:1\"]\n[throttle]\n"
                  "ip_reject_message = \"a\\r\\nb\"\n")
                .find("control characters"),
            std::string::npos);
  EXPECT_NE(Error("[lookup]\nservers = [\"10.0.0.5\"]\ntimeout_s = 3\n").find("unknown key"),
            std::string::npos);
}

TEST(RouteStackTest, NoLookupSectionNoStack) {
  absl::StatusOr<ConfigPtr> c = ParseConfig("[log]\nlevel = \"warn\"\n", "t.toml", Schema());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(RouteStack::Build(**c), nullptr);
}

// A reload keeps the stack only when every route setting is the same.
TEST(RouteStackTest, ServesAConfigWithTheSameRouteSettingsOnly) {
  const std::string base =
      "[lookup]\nservers = [\"10.0.0.5\"]\n[memcache]\nservers = [\"127.0.0.1:1\"]\n"
      "[throttle]\nip_max = 10\n";
  auto parse = [](const std::string& text) {
    absl::StatusOr<ConfigPtr> c = ParseConfig(text, "t.toml", Schema());
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  };
  ConfigPtr first = parse(base);
  std::unique_ptr<RouteStack> stack = RouteStack::Build(*first);
  ASSERT_NE(stack, nullptr);
  EXPECT_TRUE(stack->Serves(*parse(base + "[log]\nlevel = \"warn\"\n")));
  EXPECT_FALSE(stack->Serves(*parse("[log]\nlevel = \"warn\"\n")));
  EXPECT_FALSE(stack->Serves(
      *parse("[lookup]\nservers = [\"10.0.0.6\"]\n[memcache]\nservers = [\"127.0.0.1:1\"]\n"
             "[throttle]\nip_max = 10\n")));
  EXPECT_FALSE(stack->Serves(
      *parse("[lookup]\nservers = [\"10.0.0.5\"]\n[memcache]\nservers = [\"127.0.0.1:2\"]\n"
             "[throttle]\nip_max = 10\n")));
  EXPECT_FALSE(stack->Serves(
      *parse("[lookup]\nservers = [\"10.0.0.5\"]\n[memcache]\nservers = [\"127.0.0.1:1\"]\n"
             "[throttle]\nip_max = 11\n")));
  EXPECT_FALSE(stack->Serves(
      *parse("[lookup]\nservers = [\"10.0.0.5\"]\n[memcache]\nservers = [\"127.0.0.1:1\"]\n")));
  RunUntilComplete(*testing::MakeReactor(), stack->Close());
}

using RouteStackLiveTest = testing::LiveRouteTest;

struct Outcome {
  ResolveResult route;
  std::vector<bool> ip_allowed;
};

Task<Outcome> Exercise(RouteStack* s) {
  Outcome out;
  ResolveRequest r;
  r.login = "jd";
  r.protocol = "imap";
  r.client_ip = "198.51.100.7";
  r.local_ip = "127.0.0.1";
  out.route = co_await s->router().Resolve(r);
  for (int i = 0; i < 3; ++i) {
    ThrottleDecision d = co_await s->throttle()->CheckIp("imap", "198.51.100.7");
    out.ip_allowed.push_back(d.allowed());
  }
  co_await s->Close();
  co_return out;
}

TEST_F(RouteStackLiveTest, BuiltFromConfigItResolvesAndThrottles) {
  const std::string text = "[memcache]\nservers = [\"127.0.0.1:" + std::to_string(mc_.port()) +
                           "\"]\nttl_s = 60\n"
                           "[lookup]\nservers = [\"http://127.0.0.1:" +
                           std::to_string(lookupd_.port()) +
                           "/service/extension/nginx-lookup\"]\ntimeout_ms = 2000\n"
                           "[throttle]\nimap_max = 2\nimap_ttl_s = 60\n";
  absl::StatusOr<ConfigPtr> c = ParseConfig(text, "t.toml", Schema());
  ASSERT_TRUE(c.ok()) << c.status();
  std::unique_ptr<RouteStack> stack = RouteStack::Build(**c);
  ASSERT_NE(stack, nullptr);
  ASSERT_NE(stack->throttle(), nullptr);
  ASSERT_NE(stack->memcache(), nullptr);
  Outcome o = RunUntilComplete(*reactor_, Exercise(stack.get()));
  ASSERT_EQ(o.route.status, ResolveStatus::kOk) << o.route.reason;
  EXPECT_EQ(o.route.account, "john@example.com");
  EXPECT_EQ(o.route.port, 7143);
  EXPECT_EQ(o.ip_allowed, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(lookupd_.Requests(), 1);
}

}  // namespace
}  // namespace ringproxy
