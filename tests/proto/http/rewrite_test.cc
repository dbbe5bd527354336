// Rewrite rules (proto/http/rewrite.h): captures, the query carried over or dropped,
// order, `last`, redirects, and the replacements Add refuses.
#include "proto/http/rewrite.h"

#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace ringproxy::http {
namespace {

const RewriteContext kContext{"https", "mail.example.com", "/client/target?x=1"};

std::string Rewrite(const RewriteRules& rules, std::string_view target, int* status = nullptr) {
  std::string out = "unchanged";
  const RewriteResult r = rules.Apply(target, kContext, &out);
  if (status != nullptr) *status = r.redirect_status;
  if (!r.changed) {
    EXPECT_EQ(out, "unchanged");
  }
  return r.changed ? out : std::string(target);
}

TEST(RewriteTest, CapturesAndQueryCarriedOver) {
  RewriteRules rules;
  std::string error;
  ASSERT_TRUE(rules.Add("^/old/([^/]+)/(.*)$", "/new/$2/$1", 0, false, &error)) << error;
  EXPECT_EQ(Rewrite(rules, "/old/a/b/c"), "/new/b/c/a");
  EXPECT_EQ(Rewrite(rules, "/old/a/b?x=1&y=2"), "/new/b/a?x=1&y=2");
  EXPECT_EQ(Rewrite(rules, "/other/a/b?x=1"), "/other/a/b?x=1");
  // The query is not part of what the pattern sees.
  EXPECT_EQ(Rewrite(rules, "/x?/old/a/b"), "/x?/old/a/b");
}

TEST(RewriteTest, ReplacementQueryJoinsOrDropsTheClients) {
  RewriteRules rules;
  std::string error;
  ASSERT_TRUE(rules.Add("^/a$", "/b?from=a", 0, true, &error));
  ASSERT_TRUE(rules.Add("^/c$", "/d?", 0, true, &error));
  EXPECT_EQ(Rewrite(rules, "/a"), "/b?from=a");
  EXPECT_EQ(Rewrite(rules, "/a?x=1"), "/b?from=a&x=1");
  EXPECT_EQ(Rewrite(rules, "/c?x=1"), "/d");
}

TEST(RewriteTest, RulesRunInOrderUntilLast) {
  RewriteRules rules;
  std::string error;
  ASSERT_TRUE(rules.Add("^/one/", "/two/", 0, false, &error));
  ASSERT_TRUE(rules.Add("^/two/", "/three/", 0, true, &error));
  ASSERT_TRUE(rules.Add("^/three/", "/four/", 0, false, &error));
  EXPECT_EQ(Rewrite(rules, "/one/"), "/three/");
  EXPECT_EQ(Rewrite(rules, "/three/"), "/four/");
  EXPECT_EQ(rules.size(), 3u);
}

TEST(RewriteTest, RedirectsWithStatusSchemeAndHost) {
  RewriteRules rules;
  std::string error;
  ASSERT_TRUE(rules.Add("^/moved/(.*)", "/here/$1", 301, false, &error));
  ASSERT_TRUE(rules.Add("^/secure/(.*)", "https://$host/$1", 0, false, &error));
  ASSERT_TRUE(rules.Add("^/keep/(.*)", "$scheme://$host/kept/$1", 308, false, &error));
  ASSERT_TRUE(rules.Add("^/here/", "/never/", 0, false, &error));
  int status = 0;
  EXPECT_EQ(Rewrite(rules, "/moved/x?q=1", &status), "/here/x?q=1");
  EXPECT_EQ(status, 301);  // and the rules after it did not run
  EXPECT_EQ(Rewrite(rules, "/secure/y", &status), "https://mail.example.com/y");
  EXPECT_EQ(status, 302);
  EXPECT_EQ(Rewrite(rules, "/keep/z", &status), "https://mail.example.com/kept/z");
  EXPECT_EQ(status, 308);
  EXPECT_EQ(Rewrite(rules, "/here/", &status), "/never/");
  EXPECT_EQ(status, 0);
}

// An empty Location is the same URL again: a redirect loop (cached, for a 301).
TEST(RewriteTest, ARedirectToNothingGoesToTheRoot) {
  RewriteRules rules;
  std::string error;
  ASSERT_TRUE(rules.Add("^/strip(.*)$", "$1", 301, false, &error)) << error;
  ASSERT_TRUE(rules.Add("^/drop(.*)$", "$1?", 301, false, &error)) << error;
  int status = 0;
  EXPECT_EQ(Rewrite(rules, "/strip", &status), "/");
  EXPECT_EQ(Rewrite(rules, "/strip?x=1", &status), "/?x=1");
  EXPECT_EQ(Rewrite(rules, "/drop?x=1", &status), "/");
  EXPECT_EQ(status, 301);
}

TEST(RewriteTest, OptionalCaptureThatDidNotTakePartIsEmpty) {
  RewriteRules rules;
  std::string error;
  ASSERT_TRUE(rules.Add("^/u(/x)?/(.*)", "/v$1/$2$", 0, false, &error));
  EXPECT_EQ(Rewrite(rules, "/u/p"), "/v/p$");
  EXPECT_EQ(Rewrite(rules, "/u/x/p"), "/v/x/p$");
}

TEST(RewriteTest, AnInternalRewriteStaysAPath) {
  RewriteRules rules;
  std::string error;
  ASSERT_TRUE(rules.Add("^/old(/.*)?$", "$1", 0, false, &error)) << error;
  EXPECT_EQ(Rewrite(rules, "/old/a?b"), "/a?b");
  EXPECT_EQ(Rewrite(rules, "/old"), "/");
}

TEST(RewriteTest, VariablesExpandTheSameInRulesAndRedirects) {
  RewriteRules rules;
  std::string error;
  ASSERT_TRUE(
      rules.Add("^/from/(.*)", "$scheme://$host/to/$1?was=$request_uri?", 301, false, &error))
      << error;
  int status = 0;
  EXPECT_EQ(Rewrite(rules, "/from/a?q", &status),
            "https://mail.example.com/to/a?was=/client/target?x=1");
  EXPECT_EQ(status, 301);
  EXPECT_EQ(ExpandVariables("$scheme://$host/new$request_uri $1 $$x", kContext),
            "https://mail.example.com/new/client/target?x=1 $1 $$x");
}

// nginx's $host: the Host's name in lower case without its port ("Host: Mail:8080"
// must not send a browser to TLS on the plain port).
TEST(RewriteTest, HostIsTheNameWithoutItsPortInLowerCase) {
  EXPECT_EQ(ExpandVariables("https://$host/login", {"http", "Mail.Example.com:8080", "/"}),
            "https://mail.example.com/login");
  EXPECT_EQ(ExpandVariables("https://$host/", {"http", "[2001:DB8::1]:8080", "/"}),
            "https://[2001:db8::1]/");
  RewriteRules rules;
  std::string error;
  ASSERT_TRUE(rules.Add("^/(.*)", "https://$host/$1", 302, false, &error));
  std::string out;
  EXPECT_EQ(rules.Apply("/a", {"http", "mail.example.com:80", "/a"}, &out).redirect_status, 302);
  EXPECT_EQ(out, "https://mail.example.com/a");
}

TEST(RewriteTest, AddRefusesWhatCannotWork) {
  RewriteRules rules;
  std::string error;
  EXPECT_FALSE(rules.Add("", "/x", 0, false, &error));
  EXPECT_FALSE(rules.Add("(", "/x", 0, false, &error));
  EXPECT_NE(error.find("bad regular expression"), std::string::npos) << error;
  EXPECT_FALSE(rules.Add("^/(a)", "/$2", 0, false, &error));
  EXPECT_NE(error.find("capture"), std::string::npos) << error;
  EXPECT_FALSE(rules.Add("^/a", "relative", 0, false, &error));
  EXPECT_FALSE(rules.Add("^/a", "/with space", 0, false, &error));
  EXPECT_FALSE(rules.Add("^/a", "/b\r\nX: y", 0, false, &error));
  EXPECT_FALSE(rules.Add("^/a", "/b", 303, false, &error));
  EXPECT_TRUE(rules.empty());
}

TEST(RewriteTest, ALocationPathNeverPassesForAnotherHost) {
  for (auto [in, want] : {std::pair<std::string, std::string>{"//evil.test/x", "/evil.test/x"},
                          {"/\\evil.test", "/evil.test"},
                          {"///", "/"},
                          {"/a//b", "/a//b"},
                          {"https://a.test//x", "https://a.test//x"}}) {
    SafeRelativeLocation(&in);
    EXPECT_EQ(in, want);
  }
}

}  // namespace
}  // namespace ringproxy::http
