// IMAP strings for the upstream (proto/imap/string_writer.h): what can be quoted, and
// that the command parser reads back exactly what was written.
#include "proto/imap/string_writer.h"

#include <string>

#include "gtest/gtest.h"
#include "proto/imap/command_parser.h"

namespace ringproxy::imap {
namespace {

// Writes `value` as the one argument of a command and parses it back.
std::string RoundTrip(std::string_view value) {
  std::string line = "t1 LOGIN ";
  if (CanQuote(value)) {
    AppendQuoted(value, &line);
  } else {
    AppendLiteralHeader(value.size(), true, &line);
    line.append(value);
  }
  line.append("\r\n");
  CommandParser p;
  ParseResult r = p.Parse(line);
  EXPECT_EQ(r.event, Event::kCommand) << line;
  EXPECT_EQ(r.consumed, line.size());
  if (r.event != Event::kCommand || p.args().size() != 1) return "<parse failed>";
  return std::string(p.args()[0].value);
}

TEST(ImapStringWriterTest, QuotedWhenPossible) {
  EXPECT_TRUE(CanQuote("john@example.com"));
  EXPECT_TRUE(CanQuote("pa\"ss\\word with spaces"));
  EXPECT_TRUE(CanQuote(""));
  EXPECT_FALSE(CanQuote("a\r\nb"));
  EXPECT_FALSE(CanQuote(std::string("a\0b", 3)));
  EXPECT_FALSE(CanQuote("j\xc3\xb6rg"));
  std::string out;
  AppendQuoted("a\"b\\c", &out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\"");
  out.clear();
  AppendLiteralHeader(12, false, &out);
  EXPECT_EQ(out, "{12}\r\n");
}

TEST(ImapStringWriterTest, TheParserReadsBackWhatWasWritten) {
  for (std::string v :
       {std::string("john"), std::string(""), std::string("\"\\\"\\"), std::string("sp ace"),
        std::string("j\xc3\xb6rg"), std::string("cr\r\nlf"), std::string(300, 'x')}) {
    EXPECT_EQ(RoundTrip(v), v);
  }
}

}  // namespace
}  // namespace ringproxy::imap
