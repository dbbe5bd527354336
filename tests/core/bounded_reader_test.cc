// The bounded reader over a scripted stream: every input read whole and split at
// every byte boundary gives the same lines and blocks; limits hold exactly; nothing
// is copied or kept that need not be.
#include "core/bounded_reader.h"

#include <string>
#include <vector>

#include "core/reactor.h"
#include "gtest/gtest.h"
#include "tests/core/scripted_stream.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

using testing::ScriptedStream;

// Reads with a little protocol: a line "{N}" announces N counted bytes. Returns a
// trace of what was read, one entry per event.
Task<std::vector<std::string>> Trace(ScriptedStream* stream, size_t max_line, LineEnding ending) {
  BoundedReader reader(stream, max_line, ending);
  std::vector<std::string> trace;
  for (;;) {
    std::string_view line;
    ReadStatus s = co_await reader.ReadLine(Deadline::Never(), &line);
    if (s == ReadStatus::kTooLong) {
      trace.push_back("too long");
      ReadStatus skip = co_await reader.SkipLine(Deadline::Never());
      if (skip != ReadStatus::kOk) {
        trace.push_back(std::string(ReadStatusName(skip)));
        break;
      }
      continue;
    }
    if (s != ReadStatus::kOk) {
      trace.push_back(std::string(ReadStatusName(s)));
      break;
    }
    trace.push_back("line:" + std::string(line));
    if (line.size() > 2 && line.front() == '{' && line.back() == '}') {
      size_t n = std::stoul(std::string(line.substr(1, line.size() - 2)));
      std::string block;
      ReadStatus b = co_await reader.ReadExactly(n, Deadline::Never(), &block);
      if (b != ReadStatus::kOk) {
        trace.push_back(std::string(ReadStatusName(b)));
        break;
      }
      trace.push_back("block:" + block);
    }
  }
  co_return trace;
}

class BoundedReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { reactor_ = testing::MakeReactor(); }
  std::vector<std::string> Run(std::vector<std::string> chunks, size_t max_line,
                               LineEnding ending = LineEnding::kLf) {
    ScriptedStream stream(std::move(chunks));
    return RunUntilComplete(*reactor_, Trace(&stream, max_line, ending));
  }
  // The trace of `input` read whole must equal its trace in every split.
  void CheckEverySplit(const std::string& input, size_t max_line, LineEnding ending,
                       const std::vector<std::string>& expected) {
    ASSERT_EQ(Run({input}, max_line, ending), expected) << "whole";
    for (size_t k = 1; k < input.size(); ++k) {
      ASSERT_EQ(Run(ScriptedStream::Split(input, k), max_line, ending), expected)
          << "chunks of " << k;
      ASSERT_EQ(Run({input.substr(0, k), input.substr(k)}, max_line, ending), expected)
          << "cut at " << k;
    }
  }
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(BoundedReaderTest, LinesWithCrlfAndLfAndCountedBlocks) {
  CheckEverySplit("a1 LOGIN {5}\r\n{5}\r\nhello\r\nb2 NOOP\nc3 LOGOUT\r\n", 64, LineEnding::kLf,
                  {"line:a1 LOGIN {5}", "line:{5}", "block:hello", "line:", "line:b2 NOOP",
                   "line:c3 LOGOUT", "end of stream"});
}

TEST_F(BoundedReaderTest, ALineOfExactlyTheLimitPassesOneMoreIsTooLongAndResyncs) {
  const std::string ok(16, 'x');
  const std::string over(17, 'y');
  CheckEverySplit(ok + "\r\n" + over + "\r\nnext\r\n", 16, LineEnding::kLf,
                  {"line:" + ok, "too long", "line:next", "end of stream"});
  // Far past the limit (no line end for a long time): the reader stops copying at the
  // limit and skips the rest.
  CheckEverySplit(std::string(200, 'z') + "\nafter\n", 16, LineEnding::kLf,
                  {"too long", "line:after", "end of stream"});
}

TEST_F(BoundedReaderTest, StrictCrlfRefusesABareLf) {
  CheckEverySplit("good\r\nbad\n", 64, LineEnding::kCrlf, {"line:good", "bare LF"});
}

TEST_F(BoundedReaderTest, EndOfStreamInsideALineOrBlockIsEof) {
  CheckEverySplit("partial", 64, LineEnding::kLf, {"end of stream"});
  CheckEverySplit("{10}\r\nshort", 64, LineEnding::kLf, {"line:{10}", "end of stream"});
}

Task<ReadStatus> ReadOneLine(ScriptedStream* s, std::string_view* line) {
  BoundedReader reader(s, 64);
  co_return co_await reader.ReadLine(Deadline::Never(), line);
}

TEST_F(BoundedReaderTest, TimeoutAndStopAreReported) {
  std::string_view line;
  ScriptedStream a({"par", ScriptedStream::kTimeout});
  EXPECT_EQ(RunUntilComplete(*reactor_, ReadOneLine(&a, &line)), ReadStatus::kTimeout);
  ScriptedStream b({"par"});
  b.Abort();
  EXPECT_EQ(RunUntilComplete(*reactor_, ReadOneLine(&b, &line)), ReadStatus::kStopped);
}

// A line that lies whole in the stream's chunk is a view into it; a line that spans
// chunks is copied, and the copy is freed once the line has been consumed.
Task<void> ZeroCopyAndRelease(ScriptedStream* s) {
  BoundedReader reader(s, 64);
  std::string_view line;
  EXPECT_EQ(co_await reader.ReadLine(Deadline::Never(), &line), ReadStatus::kOk);
  EXPECT_EQ(line, "first");
  const std::string& chunk = s->current();
  EXPECT_TRUE(line.data() >= chunk.data() && line.data() < chunk.data() + chunk.size())
      << "a whole line should not be copied";
  EXPECT_EQ(reader.own_capacity(), std::string().capacity());
  EXPECT_EQ(co_await reader.ReadLine(Deadline::Never(), &line), ReadStatus::kOk);
  EXPECT_EQ(line, std::string(40, 's') + "econd");
  EXPECT_EQ(co_await reader.ReadLine(Deadline::Never(), &line), ReadStatus::kOk);
  EXPECT_EQ(line, "third");
  EXPECT_EQ(reader.own_capacity(), std::string().capacity()) << "the copy was not freed";
}

TEST_F(BoundedReaderTest, WholeLinesAreViewsAndCopiesAreFreed) {
  ScriptedStream s({"first\r\n" + std::string(40, 's'), "econd\r\nthird\r\n"});
  RunUntilComplete(*reactor_, ZeroCopyAndRelease(&s));
}

// STARTTLS: after the command line, whatever else arrived is visible and can be
// dropped before TLS starts.
Task<void> BufferedAfterACommand(ScriptedStream* s) {
  BoundedReader reader(s, 64);
  std::string_view line;
  EXPECT_EQ(co_await reader.ReadLine(Deadline::Never(), &line), ReadStatus::kOk);
  EXPECT_EQ(line, "a STARTTLS");
  EXPECT_EQ(reader.buffered(), std::string("b CAPABILITY\r\nc NOOP\r\n").size());
  EXPECT_EQ(reader.DiscardBuffered(), std::string("b CAPABILITY\r\nc NOOP\r\n").size());
  EXPECT_EQ(reader.buffered(), 0u);
  EXPECT_EQ(co_await reader.ReadLine(Deadline::Never(), &line), ReadStatus::kEof);
}

TEST_F(BoundedReaderTest, BufferedBytesBehindALineCanBeSeenAndDropped) {
  ScriptedStream one({"a STARTTLS\r\nb CAPABILITY\r\n", "c NOOP\r\n"});
  RunUntilComplete(*reactor_, BufferedAfterACommand(&one));
  ScriptedStream split({"a STARTT", "LS\r\nb CAPABILITY\r\nc NOOP\r\n"});
  RunUntilComplete(*reactor_, BufferedAfterACommand(&split));
}

Task<std::vector<size_t>> ReadSomeSizes(ScriptedStream* s, size_t max) {
  BoundedReader reader(s, 64);
  std::vector<size_t> sizes;
  for (;;) {
    std::span<const std::byte> part;
    ReadStatus st = co_await reader.ReadSome(max, Deadline::Never(), &part);
    if (st != ReadStatus::kOk) break;
    sizes.push_back(part.size());
  }
  co_return sizes;
}

TEST_F(BoundedReaderTest, ReadSomeNeverExceedsItsMaximum) {
  ScriptedStream s({"0123456789", "abc"});
  EXPECT_EQ(RunUntilComplete(*reactor_, ReadSomeSizes(&s, 4)), (std::vector<size_t>{4, 4, 2, 3}));
}

}  // namespace
}  // namespace ringproxy
