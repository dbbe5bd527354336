// Virtual servers by Host (proto/http/virtual_host.h): exact before wildcards, the
// longest wildcard first, case, ports and trailing dots ignored, the default server
// and strict mode, and the names a config may not give.
#include "proto/http/virtual_host.h"

#include <string>

#include "gtest/gtest.h"

namespace ringproxy::http {
namespace {

VirtualHostIndex Index(bool with_default) {
  VirtualHostIndex index;
  std::string error;
  EXPECT_TRUE(index.Add("mail.example.com", 1, &error)) << error;
  EXPECT_TRUE(index.Add("*.example.com", 2, &error)) << error;
  EXPECT_TRUE(index.Add("*.eu.example.com", 3, &error)) << error;
  EXPECT_TRUE(index.Add("mail.*", 4, &error)) << error;
  EXPECT_TRUE(index.Add("Admin.Example.NET.", 5, &error)) << error;
  EXPECT_TRUE(index.Add("[::1]", 6, &error)) << error;
  if (with_default) index.SetDefault(0);
  index.Finish();
  return index;
}

TEST(VirtualHostTest, ExactThenLongestWildcardThenDefault) {
  const VirtualHostIndex index = Index(true);
  EXPECT_EQ(index.Find("mail.example.com"), 1);
  EXPECT_EQ(index.Find("MAIL.Example.com:8443"), 1);
  EXPECT_EQ(index.Find("mail.example.com."), 1);
  EXPECT_EQ(index.Find("webmail.example.com"), 2);
  EXPECT_EQ(index.Find("a.b.example.com"), 2);
  EXPECT_EQ(index.Find("x.eu.example.com"), 3);  // the longer wildcard
  EXPECT_EQ(index.Find("mail.example.org"), 4);
  EXPECT_EQ(index.Find("admin.example.net"), 5);
  EXPECT_EQ(index.Find("[::1]:443"), 6);
  EXPECT_EQ(index.Find("example.com"), 0);  // "*.example.com" needs a label before it
  EXPECT_EQ(index.Find("unknown.test"), 0);
  EXPECT_EQ(index.Find(""), 0);
}

TEST(VirtualHostTest, StrictModeFindsNothingForAnUnknownHost) {
  const VirtualHostIndex index = Index(false);
  EXPECT_EQ(index.Find("unknown.test"), -1);
  EXPECT_EQ(index.Find("mail.example.com"), 1);
}

TEST(VirtualHostTest, NamesAConfigMayNotGive) {
  VirtualHostIndex index;
  std::string error;
  ASSERT_TRUE(index.Add("a.example.com", 1, &error));
  for (const char* bad : {"", "a.example.com", "A.EXAMPLE.COM", "*.", "*..com", "a..b", "host:80",
                          "*.example.com:80", "bad name", "x.*.com", ".*"}) {
    error.clear();
    EXPECT_FALSE(index.Add(bad, 2, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  ASSERT_TRUE(index.Add("*.example.com", 2, &error));
  EXPECT_FALSE(index.Add("*.Example.com", 3, &error));
}

TEST(VirtualHostTest, NormalizeHost) {
  char buffer[256];
  EXPECT_EQ(NormalizeHost("Mail.Example.COM.:443", buffer), "mail.example.com");
  EXPECT_EQ(NormalizeHost("[::1]:80", buffer), "[::1]");
  EXPECT_EQ(NormalizeHost(std::string(300, 'a'), buffer), "");
}

}  // namespace
}  // namespace ringproxy::http
