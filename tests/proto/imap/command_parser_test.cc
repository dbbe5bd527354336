// The IMAP command parser (proto/imap/command_parser.h): every case whole and split at
// every 1, 2, 5, 10 and 100 bytes must give the same events; the negative space (each
// syntax fault, each limit crossed by one) and resynchronisation after an error.
#include "proto/imap/command_parser.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ringproxy::imap {
namespace {

std::string Describe(const CommandParser& p, const ParseResult& r) {
  std::string out;
  switch (r.event) {
    case Event::kCommand: {
      out = "CMD " + std::string(p.tag()) + " " + std::string(p.name());
      for (const Arg& a : p.args()) {
        switch (a.kind) {
          case ArgKind::kAtom:
            out += " A:" + std::string(a.value);
            break;
          case ArgKind::kQuoted:
            out += " Q:" + std::string(a.value);
            break;
          case ArgKind::kLiteral:
            out += " L:" + std::string(a.value);
            break;
          case ArgKind::kListBegin:
            out += " (";
            break;
          case ArgKind::kListEnd:
            out += " )";
            break;
        }
      }
      return out;
    }
    case Event::kContinue:
      return "CONT " + std::to_string(p.literal_bytes());
    case Event::kError:
      return "ERR " + std::string(ErrorName(r.error)) + " tag=" + std::string(p.tag());
    case Event::kNeedMore:
      break;
  }
  return "?";
}

// Feeds `in` in pieces of `piece` bytes (0: whole) and lists the events.
std::vector<std::string> Run(const std::string& in, size_t piece, CommandLimits limits = {}) {
  CommandParser p(limits);
  std::vector<std::string> events;
  const size_t step = piece == 0 ? in.size() : piece;
  for (size_t at = 0; at < in.size(); at += step) {
    std::string_view chunk = std::string_view(in).substr(at, step);
    for (;;) {
      ParseResult r = p.Parse(chunk);
      EXPECT_LE(r.consumed, chunk.size());
      chunk.remove_prefix(r.consumed);
      if (r.event == Event::kNeedMore) {
        EXPECT_TRUE(chunk.empty());
        break;
      }
      events.push_back(Describe(p, r));
    }
  }
  return events;
}

// The same events whole and in pieces.
void Expect(const std::string& in, const std::vector<std::string>& want,
            CommandLimits limits = {}) {
  for (size_t piece : {0, 1, 2, 5, 10, 100}) {
    EXPECT_EQ(Run(in, piece, limits), want) << "pieces of " << piece << " for: " << in;
  }
}

TEST(ImapCommandParserTest, SimpleCommands) {
  Expect("a1 CAPABILITY\r\n", {"CMD a1 CAPABILITY"});
  Expect("a2 noop\n", {"CMD a2 noop"});  // bare LF, case kept (the session compares)
  Expect("A003 LOGOUT\r\nA004 NOOP\r\n", {"CMD A003 LOGOUT", "CMD A004 NOOP"});
  Expect("x.1] STARTTLS\r\n", {"CMD x.1] STARTTLS"});  // ']' may be in a tag
}

TEST(ImapCommandParserTest, LoginWithAtomsQuotedStringsAndEscapes) {
  Expect("a1 LOGIN john secret\r\n", {"CMD a1 LOGIN A:john A:secret"});
  Expect("a1 LOGIN \"jo\\\"hn\" \"p\\\\ss word\"\r\n", {"CMD a1 LOGIN Q:jo\"hn Q:p\\ss word"});
  Expect("a1 LOGIN \"\" \"\"\r\n", {"CMD a1 LOGIN Q: Q:"});
  Expect("a1 LOGIN \"j\xc3\xb6rg\" x\r\n", {"CMD a1 LOGIN Q:j\xc3\xb6rg A:x"});
  Expect("a1  LOGIN  john   secret  \r\n", {"CMD a1 LOGIN A:john A:secret"});
  Expect("a1 LOGIN john@example.com/tb secret\r\n",
         {"CMD a1 LOGIN A:john@example.com/tb A:secret"});
}

TEST(ImapCommandParserTest, SynchronisingLiteralsAskForContinuation) {
  Expect("a1 LOGIN {4}\r\njohn {6}\r\nsecret\r\n",
         {"CONT 4", "CONT 6", "CMD a1 LOGIN L:john L:secret"});
  // Literal data is bytes: CRLF, quotes and parentheses inside it are data.
  Expect("a1 LOGIN {4}\r\nj\r\n\" \"x\"\r\n", {"CONT 4", "CMD a1 LOGIN L:j\r\n\" Q:x"});
  Expect("a1 LOGIN {0}\r\n {0}\r\n\r\n", {"CONT 0", "CONT 0", "CMD a1 LOGIN L: L:"});
}

TEST(ImapCommandParserTest, NonSynchronisingLiteralsDoNot) {
  Expect("a1 LOGIN {4+}\r\njohn {6+}\r\nsecret\r\n", {"CMD a1 LOGIN L:john L:secret"});
  Expect("a1 LOGIN {4+}\njohn \"x\"\n", {"CMD a1 LOGIN L:john Q:x"});
  // Leading zeros are digits of the size (1*DIGIT), however many: the literal's bytes
  // are data, never read as a line of their own.
  Expect("a1 LOGIN john {00000000000000000000006+}\r\nsecret\r\na2 NOOP\r\n",
         {"CMD a1 LOGIN A:john L:secret", "CMD a2 NOOP"});
}

TEST(ImapCommandParserTest, ListsForId) {
  Expect("a1 ID (\"name\" \"Thunderbird\" \"version\" \"115.0\")\r\n",
         {"CMD a1 ID ( Q:name Q:Thunderbird Q:version Q:115.0 )"});
  Expect("a1 ID NIL\r\n", {"CMD a1 ID A:NIL"});
  Expect("a1 ID ()\r\n", {"CMD a1 ID ( )"});
  Expect("a1 X (a (b {1+}\r\nc) \"d\")\r\n", {"CMD a1 X ( A:a ( A:b L:c ) Q:d )"});
}

TEST(ImapCommandParserTest, AuthenticateWithInitialResponse) {
  Expect("a1 AUTHENTICATE PLAIN AGpvaG4Ac2VjcmV0\r\n",
         {"CMD a1 AUTHENTICATE A:PLAIN A:AGpvaG4Ac2VjcmV0"});
  Expect("a1 AUTHENTICATE PLAIN =\r\n", {"CMD a1 AUTHENTICATE A:PLAIN A:="});
}

TEST(ImapCommandParserTest, SyntaxErrorsAndResynchronisation) {
  Expect("\r\na1 NOOP\r\n", {"ERR empty line tag=", "CMD a1 NOOP"});
  Expect("\na1 NOOP\r\n", {"ERR empty line tag=", "CMD a1 NOOP"});
  Expect("* LOGIN a b\r\na1 NOOP\r\n", {"ERR bad tag tag=", "CMD a1 NOOP"});
  Expect("+ x\r\na1 NOOP\r\n", {"ERR bad tag tag=", "CMD a1 NOOP"});
  Expect("a+1 NOOP\r\na1 NOOP\r\n", {"ERR bad tag tag=", "CMD a1 NOOP"});
  Expect(" a1 NOOP\r\na1 NOOP\r\n", {"ERR bad tag tag=", "CMD a1 NOOP"});
  // At most 32 bytes: the upstream login reuses the tag (with ".ID"), and Dovecot answers
  // a tag over 126 bytes with an untagged BAD that a login would wait on until timeout.
  Expect(std::string(32, 't') + " NOOP\r\n", {"CMD " + std::string(32, 't') + " NOOP"});
  Expect(std::string(33, 't') + " NOOP\r\na1 NOOP\r\n", {"ERR bad tag tag=", "CMD a1 NOOP"});
  Expect("a1\r\na2 NOOP\r\n", {"ERR missing command tag=a1", "CMD a2 NOOP"});
  Expect("a1 \r\na2 NOOP\r\n", {"ERR missing command tag=a1", "CMD a2 NOOP"});
  Expect("a1 LO\"GIN\r\na2 NOOP\r\n", {"ERR bad command name tag=a1", "CMD a2 NOOP"});
  Expect("a1 (x)\r\na2 NOOP\r\n", {"ERR bad command name tag=a1", "CMD a2 NOOP"});
  Expect("a1 LOGIN \"a\\b\" x\r\na2 NOOP\r\n", {"ERR bad quoted string tag=a1", "CMD a2 NOOP"});
  Expect("a1 LOGIN \"ab\r\na2 NOOP\r\n", {"ERR bad quoted string tag=a1", "CMD a2 NOOP"});
  Expect("a1 LOGIN \"ab\na2 NOOP\r\n", {"ERR bad quoted string tag=a1", "CMD a2 NOOP"});
  Expect("a1 LOGIN us\x01r x\r\na2 NOOP\r\n", {"ERR bad character tag=a1", "CMD a2 NOOP"});
  Expect("a1 LOGIN user\"x\"\r\na2 NOOP\r\n", {"ERR bad character tag=a1", "CMD a2 NOOP"});
  Expect("a1 LOGIN a\rb\r\na2 NOOP\r\n", {"ERR bad character tag=a1", "CMD a2 NOOP"});
  Expect("a1 ID (a\r\na2 NOOP\r\n", {"ERR unbalanced parentheses tag=a1", "CMD a2 NOOP"});
  Expect("a1 ID a)\r\na2 NOOP\r\n", {"ERR unbalanced parentheses tag=a1", "CMD a2 NOOP"});
  Expect("a1 ID )\r\na2 NOOP\r\n", {"ERR unbalanced parentheses tag=a1", "CMD a2 NOOP"});
}

TEST(ImapCommandParserTest, MalformedLiterals) {
  for (const char* bad :
       {"{}", "{x}", "{1x}", "{+}", "{12345678901234567890}", "{3+x", "{3}x", "{3} "}) {
    Expect(std::string("a1 LOGIN ") + bad + "\r\na2 NOOP\r\n",
           {"ERR bad literal tag=a1", "CMD a2 NOOP"});
  }
  // NUL is not a CHAR8: the rest of the literal is skipped, then the rest of its line.
  static constexpr char kNul[] = "a1 LOGIN {4+}\r\nj\0hn more\r\na2 NOOP\r\n";
  Expect(std::string(kNul, sizeof(kNul) - 1), {"ERR bad literal tag=a1", "CMD a2 NOOP"});
  // A NUL as the literal's last byte: the rest of the line is still skipped, not read
  // as a command of its own.
  static constexpr char kLastNul[] = "a1 LOGIN {4+}\r\njoh\0b2 NOOP\r\na2 NOOP\r\n";
  Expect(std::string(kLastNul, sizeof(kLastNul) - 1), {"ERR bad literal tag=a1", "CMD a2 NOOP"});
  static constexpr char kThenLiteral[] = "a1 LOGIN {3+}\r\na\0b {1+}\r\nx\r\na2 NOOP\r\n";
  Expect(std::string(kThenLiteral, sizeof(kThenLiteral) - 1),
         {"ERR bad literal tag=a1", "CMD a2 NOOP"});
  // Syntax errors too: the rest of the line is skipped with the literal it announces.
  Expect("a1 LOGIN a\"b {5+}\r\nz b c\r\na2 NOOP\r\n", {"ERR bad character tag=a1", "CMD a2 NOOP"});
}

TEST(ImapCommandParserTest, CommandLimitCountsEveryLineAndLiteral) {
  CommandLimits limits{.line_bytes_max = 100, .literal_bytes_max = 100, .command_bytes_max = 64};
  // "a1 X {20+}" (10) + 20 + " {20+}" (6) + 20 + CRLF: 58 bytes, under 64.
  const std::string twenty(20, 'x');
  Expect("a1 X {20+}\r\n" + twenty + " {20+}\r\n" + twenty + "\r\n",
         {"CMD a1 X L:" + twenty + " L:" + twenty}, limits);
  // A third literal would pass 64: refused at its header, its data skipped.
  Expect(
      "a1 X {20+}\r\n" + twenty + " {20+}\r\n" + twenty + " {20+}\r\n" + twenty + "\r\na2 NOOP\r\n",
      {"ERR command too long tag=a1", "CMD a2 NOOP"}, limits);
  // Lines between literals count as well.
  Expect("a1 X {20+}\r\n" + twenty + " " + std::string(40, 'y') + "\r\na2 NOOP\r\n",
         {"ERR command too long tag=a1", "CMD a2 NOOP"}, limits);
  // The default holds the largest ID RFC 2971 allows (30 pairs of 30 and 1024 octets).
  std::string id = "a1 ID (";
  for (int i = 0; i < 30; ++i) {
    id += "\"" + std::string(30, 'k') + "\" {1024+}\r\n" + std::string(1024, 'v') + " ";
  }
  id.back() = ')';
  id += "\r\n";
  CommandParser p(CommandLimits{.line_bytes_max = 8192,
                                .literal_bytes_max = 8192,
                                .command_bytes_max = 32768,
                                .args_max = 64});
  size_t at = 0;
  ParseResult r;
  do {
    r = p.Parse(std::string_view(id).substr(at));
    at += r.consumed;
  } while (r.event == Event::kNeedMore && at < id.size());
  EXPECT_EQ(r.event, Event::kCommand) << ErrorName(r.error);
}

TEST(ImapCommandParserTest, LineLimitCrossedByOne) {
  CommandLimits limits;
  limits.line_bytes_max = 20;
  const std::string exact = "a1 LOGIN john 12345\r\n";  // 21 bytes with the LF
  ASSERT_EQ(exact.size(), 21u);
  Expect("a1 LOGIN john 1234\r\n", {"CMD a1 LOGIN A:john A:1234"}, limits);
  Expect(exact + "a2 NOOP\r\n", {"ERR line too long tag=a1", "CMD a2 NOOP"}, limits);
  // Literal data is not line: each line around it is counted apart.
  Expect("a1 LOGIN {30+}\r\n123456789012345678901234567890 x\r\n",
         {"CMD a1 LOGIN L:123456789012345678901234567890 A:x"},
         CommandLimits{.line_bytes_max = 20, .literal_bytes_max = 30});
  // An endless line is refused at the limit, not at its end.
  CommandParser p(limits);
  ParseResult r = p.Parse(std::string(1000, 'a'));
  EXPECT_EQ(r.event, Event::kError);
  EXPECT_EQ(r.error, Error::kLineTooLong);
  EXPECT_EQ(r.consumed, 20u);
}

TEST(ImapCommandParserTest, LiteralLimitCrossedByOne) {
  CommandLimits limits;
  limits.literal_bytes_max = 6;
  Expect("a1 LOGIN {4}\r\njohn {6}\r\nsecret\r\n",
         {"CONT 4", "CONT 6", "CMD a1 LOGIN L:john L:secret"}, limits);
  // Synchronising: no continuation, so the client sends no data.
  Expect("a1 LOGIN {4}\r\njohn {7}\r\na2 NOOP\r\n",
         {"CONT 4", "ERR literal too long tag=a1", "CMD a2 NOOP"}, limits);
  // Non-synchronising: the data comes anyway and is skipped with the rest of the line.
  Expect("a1 LOGIN john {7+}\r\nsecret! more\r\na2 NOOP\r\n",
         {"ERR literal too long tag=a1", "CMD a2 NOOP"}, limits);
  Expect("a1 LOGIN john {7+}\r\na2 NOO\r\na3 NOOP\r\n",
         {"ERR literal too long tag=a1", "CMD a3 NOOP"}, limits);
  // The skipped line announces another {n+} literal: its data is skipped too (a
  // password there must not be read as a command), however many follow.
  Expect("a1 LOGIN {7+}\r\nsecret! {13+}\r\nz CAPABILITY\r\na2 NOOP\r\n",
         {"ERR literal too long tag=a1", "CMD a2 NOOP"}, limits);
  Expect("a1 LOGIN {7+}\r\nsecret! {1+}\r\nx {3+}\r\nyyy\r\na2 NOOP\r\n",
         {"ERR literal too long tag=a1", "CMD a2 NOOP"}, limits);
  // A synchronising one gets no continuation, so no data follows it.
  Expect("a1 LOGIN {7+}\r\nsecret! {2}\r\na2 NOOP\r\n",
         {"ERR literal too long tag=a1", "CMD a2 NOOP"}, limits);
  // Only at the line's end: `{2+}` inside the line announces nothing.
  Expect("a1 LOGIN {7+}\r\nsecret! {2+} x\r\na2 NOOP\r\n",
         {"ERR literal too long tag=a1", "CMD a2 NOOP"}, limits);
}

TEST(ImapCommandParserTest, ArgumentAndDepthLimitsCrossedByOne) {
  CommandLimits limits;
  limits.args_max = 4;
  limits.list_depth_max = 2;
  Expect("a1 X a b c d\r\n", {"CMD a1 X A:a A:b A:c A:d"}, limits);
  Expect("a1 X a b c d e\r\na2 NOOP\r\n", {"ERR too many arguments tag=a1", "CMD a2 NOOP"}, limits);
  Expect("a1 X (a) b\r\n", {"CMD a1 X ( A:a ) A:b"}, limits);
  Expect("a1 X (a) b c\r\na2 NOOP\r\n", {"ERR too many arguments tag=a1", "CMD a2 NOOP"}, limits);
  Expect("a1 X (())\r\n", {"CMD a1 X ( ( ) )"}, limits);
  Expect("a1 X ((()))\r\na2 NOOP\r\n", {"ERR lists nested too deep tag=a1", "CMD a2 NOOP"}, limits);
  // The literal that is one argument too many is skipped like a refused one.
  Expect("a1 X a b c d {3+}\r\nabc\r\na2 NOOP\r\n",
         {"ERR too many arguments tag=a1", "CMD a2 NOOP"}, limits);
}

TEST(ImapCommandParserTest, ResetDropsAPartialCommand) {
  CommandParser p;
  EXPECT_TRUE(p.at_boundary());
  EXPECT_EQ(p.Parse("a1 STARTTLS\r\nb1 CAP").event, Event::kCommand);
  EXPECT_EQ(p.name(), "STARTTLS");
  EXPECT_EQ(p.Parse("b1 CAP").event, Event::kNeedMore);
  EXPECT_FALSE(p.at_boundary());
  p.Reset();
  EXPECT_TRUE(p.at_boundary());
  ParseResult r = p.Parse("c1 NOOP\r\n");
  EXPECT_EQ(r.event, Event::kCommand);
  EXPECT_EQ(p.tag(), "c1");
  EXPECT_TRUE(p.args().empty());
}

TEST(ImapCommandParserTest, ViewsSurviveUntilTheNextParse) {
  CommandParser p;
  std::string in = "a1 LOGIN {5+}\r\nhello \"w\"\r\n";
  ParseResult r = p.Parse(in);
  ASSERT_EQ(r.event, Event::kCommand);
  in.assign(in.size(), 'x');  // the views are into the parser, not the input
  ASSERT_EQ(p.args().size(), 2u);
  EXPECT_EQ(p.args()[0].value, "hello");
  EXPECT_EQ(p.args()[1].value, "w");
}

}  // namespace
}  // namespace ringproxy::imap
