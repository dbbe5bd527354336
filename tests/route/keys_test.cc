#include "route/keys.h"

#include "gtest/gtest.h"

namespace ringproxy::keys {
namespace {

TEST(KeysTest, ZimbrasKeyFamiliesByteForByte) {
  EXPECT_EQ(MailAlias("jd", "192.0.2.10"), "alias:user=jd;ip=192.0.2.10");
  EXPECT_EQ(WebAlias("jd", "mail.example.com"), "alias:user=jd;vhost=mail.example.com");
  EXPECT_EQ(RouteByUser("imapssl", "john@example.com"),
            "route:proto=imapssl;user=john@example.com");
  EXPECT_EQ(RouteUnqualified("pop3", "john", "192.0.2.10"),
            "route:proto=pop3;user=john@192.0.2.10");
  EXPECT_EQ(RouteById("http", "6d1a", false, false), "route:proto=http;id=6d1a");
  EXPECT_EQ(RouteById("httpssl", "6d1a", true, false), "route:proto=httpssl;admin=1;id=6d1a");
  EXPECT_EQ(RouteById("https", "6d1a", false, true), "route:proto=https;zx=1;id=6d1a");
  EXPECT_EQ(IpThrottle("imap", "198.51.100.7"), "throttle:proto=i,ip=198.51.100.7");
  EXPECT_EQ(IpThrottle("pop3", "198.51.100.7"), "throttle:proto=p,ip=198.51.100.7");
  EXPECT_EQ(UserThrottle("john doe@example.com"), "throttle:user=john%20doe@example.com");
  EXPECT_EQ(UserThrottle("John@EXAMPLE.com"), "throttle:user=john@example.com");
  EXPECT_EQ(WhitelistMemo("10.0.0.1"), "whitelist:ip=10.0.0.1");
}

TEST(KeysTest, RouteValues) {
  std::string host;
  uint16_t port = 0;
  EXPECT_TRUE(ParseRouteValue("10.0.0.21:7993", &host, &port));
  EXPECT_EQ(host, "10.0.0.21");
  EXPECT_EQ(port, 7993);
  EXPECT_TRUE(ParseRouteValue("[2001:db8::5]:7143", &host, &port));
  EXPECT_EQ(host, "2001:db8::5");
  EXPECT_EQ(RouteValue("2001:db8::5", 7143), "[2001:db8::5]:7143");
  EXPECT_EQ(RouteValue("10.0.0.1", 1), "10.0.0.1:1");
  for (const char* bad : {"", "10.0.0.1", "10.0.0.1:", ":80", "1.2.3.4:0", "1.2.3.4:70000",
                          "2001:db8::5:80", "[::1:80", "h:8x", "[[a]]:1", "a]:1", "[]:1"}) {
    EXPECT_FALSE(ParseRouteValue(bad, &host, &port)) << bad;
  }
}

}  // namespace
}  // namespace ringproxy::keys
