// The scripted mail server of `loadgen imap-serve` / `pop3-serve`: the dialogues a
// proxy's upstream login and a client's logout run, fed whole and split at every 1, 2,
// 5, 10 and 100 bytes, must give the same replies.
#include "bench/loadgen/mail_script.h"

#include <algorithm>
#include <string>

#include "gtest/gtest.h"

namespace ringproxy::loadgen {
namespace {

using Protocol = ScriptedMailServer::Protocol;

struct Outcome {
  std::string out;
  bool closing = false;
};

// Feeds `input` in pieces of `step` bytes as a connection would (what Feed leaves
// unconsumed stays in front of the next piece).
Outcome Converse(Protocol protocol, std::string_view input, size_t step) {
  ScriptedMailServer s(protocol);
  Outcome o;
  std::string pending;
  for (size_t pos = 0; pos < input.size() && !s.closing(); pos += step) {
    pending.append(input.substr(pos, step));
    pending.erase(0, s.Feed(pending, &o.out));
  }
  o.closing = s.closing();
  return o;
}

void Expect(Protocol protocol, std::string_view input, std::string_view want, bool closing) {
  for (size_t step : {input.size(), size_t{1}, size_t{2}, size_t{5}, size_t{10}, size_t{100}}) {
    Outcome o = Converse(protocol, input, std::max<size_t>(step, 1));
    EXPECT_EQ(o.out, want) << "step " << step;
    EXPECT_EQ(o.closing, closing) << "step " << step;
  }
}

TEST(ScriptedMailServerTest, Greetings) {
  EXPECT_EQ(ScriptedMailServer(Protocol::kImap).Greeting().substr(0, 5), "* OK ");
  EXPECT_EQ(ScriptedMailServer(Protocol::kPop3).Greeting().substr(0, 4), "+OK ");
}

// What ringproxy's dovecot flavour sends (ID, then LOGIN with quoted strings), and the
// client's LOGOUT relayed after it.
TEST(ScriptedMailServerTest, ImapIdLoginLogout) {
  Expect(Protocol::kImap,
         "1 ID (\"x-originating-ip\" \"127.0.0.1\")\r\n"
         "a LOGIN \"user1@bench.test\" \"secret\"\r\n"
         "b LOGOUT\r\n",
         "* ID NIL\r\n1 OK ID completed\r\n"
         "a OK [CAPABILITY IMAP4rev1 LITERAL+ ID] Logged in\r\n"
         "* BYE Logging out\r\nb OK Logout completed\r\n",
         true);
}

// nginx's upstream login: LOGIN with synchronising literals, each answered with "+".
TEST(ScriptedMailServerTest, ImapLiteralLogin) {
  Expect(Protocol::kImap, "1 LOGIN {16}\r\nuser1@bench.test {6}\r\nsecret\r\nc NOOP\r\n",
         "+ go ahead\r\n+ go ahead\r\n"
         "1 OK [CAPABILITY IMAP4rev1 LITERAL+ ID] Logged in\r\n"
         "c OK NOOP completed\r\n",
         false);
  // Non-synchronising literals get no "+"; a literal may hold CRLF and '{'.
  Expect(Protocol::kImap, "a login {4+}\r\nu\r\n{ {2+}\r\npw\r\n",
         "a OK [CAPABILITY IMAP4rev1 LITERAL+ ID] Logged in\r\n", false);
}

TEST(ScriptedMailServerTest, ImapAuthenticatePlain) {
  Expect(Protocol::kImap, "a AUTHENTICATE PLAIN AHVzZXIxAHNlY3JldA==\r\n",
         "a OK [CAPABILITY IMAP4rev1 LITERAL+ ID] Logged in\r\n", false);
  Expect(Protocol::kImap, "a AUTHENTICATE PLAIN\r\nAHVzZXIxAHNlY3JldA==\r\n",
         "+ \r\na OK [CAPABILITY IMAP4rev1 LITERAL+ ID] Logged in\r\n", false);
  Expect(Protocol::kImap, "a AUTHENTICATE PLAIN\r\n*\r\n", "+ \r\na BAD AUTHENTICATE cancelled\r\n",
         false);
}

TEST(ScriptedMailServerTest, ImapCapabilityAndBadLines) {
  Expect(Protocol::kImap, "x CAPABILITY\r\n\r\nlonely\r\n",
         "* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN\r\nx OK CAPABILITY completed\r\n"
         "* BAD expected a tag and a command\r\n* BAD expected a tag and a command\r\n",
         false);
}

TEST(ScriptedMailServerTest, ImapLineTooLongCloses) {
  const std::string longest(ScriptedMailServer::kLineBytesMax, 'a');
  Outcome fits = Converse(Protocol::kImap, longest, longest.size());
  EXPECT_FALSE(fits.closing);
  Outcome over = Converse(Protocol::kImap, longest + "a", longest.size() + 1);
  EXPECT_TRUE(over.closing);
  EXPECT_EQ(over.out, "* BYE line too long\r\n");
}

// ringproxy's POP3 login (XOIP for Zimbra, USER/PASS or AUTH PLAIN), nginx's (USER /
// PASS), the client's QUIT.
TEST(ScriptedMailServerTest, Pop3Logins) {
  Expect(Protocol::kPop3, "XOIP 127.0.0.1\r\nUSER user1@bench.test\r\nPASS secret\r\nQUIT\r\n",
         "+OK\r\n+OK\r\n+OK Logged in.\r\n+OK Logging out.\r\n", true);
  Expect(Protocol::kPop3, "AUTH PLAIN AHUAcA==\r\nSTAT\r\n", "+OK Logged in.\r\n+OK 0 0\r\n",
         false);
  Expect(Protocol::kPop3, "AUTH PLAIN\r\nAHUAcA==\r\n", "+ \r\n+OK Logged in.\r\n", false);
  Expect(Protocol::kPop3, "AUTH\r\ncapa\r\n",
         "+OK\r\nPLAIN\r\n.\r\n+OK\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN\r\n.\r\n", false);
}

TEST(ScriptedMailServerTest, NothingAfterClosing) {
  Outcome o = Converse(Protocol::kPop3, "QUIT\r\nNOOP\r\n", 100);
  EXPECT_EQ(o.out, "+OK Logging out.\r\n");
}

}  // namespace
}  // namespace ringproxy::loadgen
