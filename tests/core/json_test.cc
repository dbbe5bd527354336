// JSON strings for the logs (core/json.h): escapes, and valid UTF-8 whatever the input.
#include "core/json.h"

#include <string>
#include <string_view>
#include <utility>

#include "gtest/gtest.h"

namespace ringproxy {
namespace {

std::string Json(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

TEST(JsonTest, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(Json("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(Json("\r\n\t\x01\x7f"), R"("\r\n\t\u0001\u007f")");
}

TEST(JsonTest, WellFormedUtf8PassesAndAnythingElseBecomesTheReplacementCharacter) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"caf\xc3\xa9", "\"caf\xc3\xa9\""},                     // 2 bytes
      {"\xe2\x82\xac", "\"\xe2\x82\xac\""},                   // 3 bytes
      {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},           // 4 bytes
      {"a\xffz", R"("a\ufffdz")"},                            // never in UTF-8
      {"\xe9t\xe9", R"("\ufffdt\ufffd")"},                    // Latin-1
      {"\xc3", R"("\ufffd")"},                                // cut short
      {"\xc0\xaf", R"("\ufffd\ufffd")"},                      // overlong '/'
      {"\xed\xa0\x80", R"("\ufffd\ufffd\ufffd")"},            // a surrogate
      {"\xf4\x90\x80\x80", R"("\ufffd\ufffd\ufffd\ufffd")"},  // past U+10FFFF
      {"\xe2\x82", R"("\ufffd\ufffd")"},                      // cut short
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(Json(in), want) << in;
}

}  // namespace
}  // namespace ringproxy
