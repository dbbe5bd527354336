// Location choice (proto/http/location.h): exact, then regexes in order, then the
// longest prefix; target paths.
#include "proto/http/location.h"

#include <string>

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

}  // namespace
}  // namespace ringproxy::http
