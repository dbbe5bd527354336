// Log lines (core/log.h): a value from a client cannot start a line of its own or pass
// for more key=value fields.
#include "core/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <thread>

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

// The writer stuck on a FIFO nobody reads: the thread's buffer fills and lines are
// dropped; the notice of the count is a line like any other, with time and level.
TEST(LogTest, TheDroppedLinesNoticeHasTheLinePrefix) {
  char dir[] = "/tmp/log_test.XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string fifo = std::string(dir) + "/log";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  Options options;
  options.path = fifo;
  ASSERT_TRUE(Start(options).ok());
  const uint64_t before = DroppedLines();
  const std::string filler(200, 'x');
  for (int i = 0; i < 200000 && DroppedLines() == before; ++i) RP_LOG(kInfo, "{}", filler);
  EXPECT_GT(DroppedLines(), before);
  std::string all;
  std::thread drain([&] {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(reader, buf, sizeof buf);
      if (n > 0) {
        all.append(buf, static_cast<size_t>(n));
      } else if (n == 0) {
        break;  // the writer closed it: Shutdown is done
      } else if (errno == EAGAIN) {
        ::usleep(1000);
      } else {
        break;
      }
    }
  });
  Shutdown();
  drain.join();
  ::close(reader);
  ::unlink(fifo.c_str());
  ::rmdir(dir);
  const size_t at = all.find("dropped ");
  ASSERT_NE(at, std::string::npos);
  const size_t line_start = all.rfind('\n', at) + 1;
  const std::string line = all.substr(line_start, all.find('\n', at) - line_start);
  // "2026-12-05T13:04:05.678Z warn [log] dropped N lines (log output too slow)"
  const std::string_view kRest = " warn [log] dropped ";
  ASSERT_GT(line.size(), 24 + kRest.size()) << line;
  EXPECT_TRUE(line[4] == '-' && line[10] == 'T' && line[23] == 'Z') << line;
  EXPECT_EQ(line.substr(24, kRest.size()), kRest) << line;
  EXPECT_TRUE(line.ends_with(" lines (log output too slow)")) << line;
}

}  // namespace
}  // namespace ringproxy::log
