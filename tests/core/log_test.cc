// Log lines (core/log.h): a value from a client cannot start a line of its own or pass
// for more key=value fields.
#include "core/log.h"

#include <algorithm>
#include <string>

#include "gtest/gtest.h"

namespace ringproxy::log {
namespace {

// Before Start, lines go to standard error synchronously.
std::string Captured(void (*write)()) {
  testing::internal::CaptureStderr();
  write();
  return testing::internal::GetCapturedStderr();
}

TEST(LogTest, AControlByteInAValueIsEscapedAndTheLineStaysOneLine) {
  const std::string out =
      Captured([] { RP_LOG(kWarn, "user '{}' refused", "evil\r\n2026 info [x] forged\x7f"); });
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find("user 'evil\\x0D\\x0A2026 info [x] forged\\x7F' refused\n"), std::string::npos)
      << out;
  const std::string plain = Captured([] { WriteLine(Level::kWarn, "a\tb"); });
  EXPECT_NE(plain.find("a\\x09b\n"), std::string::npos) << plain;
}

TEST(LogTest, AnAccessLineEscapesControlsToo) {
  const std::string out =
      Captured([] { AccessLine("access user={}", std::string_view("a\nstatus=200")); });
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find("access user=a\\x0Astatus=200\n"), std::string::npos) << out;
}

TEST(LogTest, AWordCannotPassForMoreFields) {
  EXPECT_EQ(fmt::format("user={} end=ok", Word{"a b=c\"d\\e"}),
            "user=a\\x20b\\x3Dc\\x22d\\x5Ce end=ok");
  EXPECT_EQ(fmt::format("{}", Word{"user@example.com/tb"}), "user@example.com/tb");
  EXPECT_EQ(fmt::format("{}", Word{"\xc3\xa9"}), "\\xC3\\xA9");
}

}  // namespace
}  // namespace ringproxy::log
