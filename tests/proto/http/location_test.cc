// Location choice (proto/http/location.h): exact, then regexes in order, then the
// longest prefix; target paths.
#include "proto/http/location.h"

#include <string>
#include <string_view>
#include <utility>

#include "gtest/gtest.h"

namespace ringproxy::http {
namespace {

TEST(LocationTest, ExactThenRegexInOrderThenLongestPrefix) {
  LocationMatcher m;
  std::string error;
  ASSERT_TRUE(m.Add(LocationKind::kPrefix, "/", 0, &error));
  ASSERT_TRUE(m.Add(LocationKind::kPrefix, "/service/", 1, &error));
  ASSERT_TRUE(m.Add(LocationKind::kPrefix, "/service/soap/", 2, &error));
  ASSERT_TRUE(m.Add(LocationKind::kRegex, "^/(home|dav)/", 3, &error));
  ASSERT_TRUE(m.Add(LocationKind::kRegexIgnoreCase, "/ews/exchange\\.asmx", 4, &error));
  ASSERT_TRUE(m.Add(LocationKind::kRegex, "^/home/special", 5, &error));  // after 3: never
  ASSERT_TRUE(m.Add(LocationKind::kExact, "/service/soap/NoOpRequest", 6, &error));
  EXPECT_EQ(m.Match("/"), 0);
  EXPECT_EQ(m.Match("/index.html"), 0);
  EXPECT_EQ(m.Match("/service/"), 1);
  EXPECT_EQ(m.Match("/service/soap/x"), 2);
  EXPECT_EQ(m.Match("/service/soap/NoOpRequest"), 6);
  EXPECT_EQ(m.Match("/service/soap/NoOpRequestX"), 2);
  EXPECT_EQ(m.Match("/home/special/x"), 3);
  EXPECT_EQ(m.Match("/dav/u/"), 3);
  EXPECT_EQ(m.Match("/EWS/Exchange.asmx"), 4);
  EXPECT_EQ(m.Match("/x/ews/exchange.asmx"), 4);  // unanchored, as nginx's ~
  LocationMatcher none;
  EXPECT_EQ(none.Match("/"), -1);
}

TEST(LocationTest, BadPatternsAreRefused) {
  LocationMatcher m;
  std::string error;
  EXPECT_FALSE(m.Add(LocationKind::kRegex, "(", 0, &error));
  EXPECT_NE(error.find("bad regular expression"), std::string::npos) << error;
  EXPECT_FALSE(m.Add(LocationKind::kPrefix, "", 0, &error));
  // Backreferences are not RE2: refused, not run in exponential time.
  EXPECT_FALSE(m.Add(LocationKind::kRegex, "(a)\\1", 0, &error));
}

TEST(LocationTest, TargetPaths) {
  EXPECT_EQ(TargetPath("/a/b?c=d"), "/a/b");
  EXPECT_EQ(TargetPath("/a"), "/a");
  EXPECT_EQ(TargetPath("http://h:8/x/y?z"), "/x/y");
  EXPECT_EQ(TargetPath("http://h"), "/");
  EXPECT_EQ(TargetPath("http://h?q"), "/");
  EXPECT_EQ(TargetPath("*"), "*");
}

// The target as NormalizePath leaves it, or "unchanged" / "above root".
std::string WithoutDots(std::string_view target) {
  std::string out;
  switch (NormalizePath(target, &out)) {
    case PathForm::kUnchanged:
      return "unchanged";
    case PathForm::kAboveRoot:
      return "above root";
    case PathForm::kBadEscape:
      return "bad escape";
    case PathForm::kNormalized: {
      // Once is enough: the result is as normal as it gets.
      std::string again;
      EXPECT_EQ(NormalizePath(out, &again), PathForm::kUnchanged) << target << " -> " << out;
      return out;
    }
  }
  return "?";
}

TEST(LocationTest, DotSegmentsAreRemovedAsRfc3986Says) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"/home/alice/../bob/x", "/home/bob/x"},
      {"/a/./b?q=/../", "/a/b?q=/../"},  // the query is not a path
      {"/a/b/..", "/a/"},
      {"/a/b/.", "/a/b/"},
      {"/a/../", "/"},
      {"/.", "/"},
      {"/a/..", "/"},
      {"/a//../b", "/a/b"},  // an empty segment is a segment
      {"/x/%2e%2E/admin/", "/admin/"},
      {"/x/.%2e/y", "/y"},
      {"/x/%2e/y", "/x/y"},
      {"/..", "above root"},
      {"/a/../../b", "above root"},
      {"/%2e%2e/b", "above root"},
  };
  for (const auto& [target, want] : cases) EXPECT_EQ(WithoutDots(target), want) << target;
  // Names with dots, and paths without dot segments, stay as they are.
  for (std::string_view t : {"/.well-known/x", "/a/.../b", "/a/..b/", "/a/b..", "/file.txt",
                             "/%2f/x", "/", "*", "/a?/../"}) {
    EXPECT_EQ(WithoutDots(t), "unchanged") << t;
  }
}

TEST(LocationTest, EscapesOfUnreservedCharactersAreDecodedAndNoOthers) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"/%73ervice/soap", "/service/soap"},
      {"/servic%65/soap?a=%73", "/service/soap?a=%73"},  // the query is left as sent
      {"/%41%5a%61%7A%30%39%2d%2E%5f%7e", "/AZaz09-._~"},
      {"/%2e%2e%2e/", "/.../"},
      {"/a%2Fb/%68", "/a%2Fb/h"},  // a slash, a '%' or a '?' keeps its escape
      {"/%25%73/%3F%68", "/%25s/%3Fh"},
      {"/x/%2e%2e/%68ome/a", "/home/a"},
      {"/%2F%20%00", "unchanged"},
      {"/%25%37%33", "/%2573"},
      // A '%' without two hex digits: refused, else "%2%65" would become an escape.
      {"/%", "bad escape"},
      {"/%6", "bad escape"},
      {"/a%zz", "bad escape"},
      {"/%6g", "bad escape"},
      {"/public/%2%65%2%65/admin", "bad escape"},
      {"/%%37%33ervice", "bad escape"},
      {"/a/%2e%2e/%2e%2e/x", "above root"},
  };
  for (const auto& [target, want] : cases) EXPECT_EQ(WithoutDots(target), want) << target;
}

}  // namespace
}  // namespace ringproxy::http
