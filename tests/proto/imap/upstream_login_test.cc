// Logging in on the mailbox server (proto/imap/upstream_login.h) against a scripted
// upstream: the exact bytes sent for each flavour and mechanism, the client's tag reused,
// [ALERT] lines collected, and each failure.
#include "proto/imap/upstream_login.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/proto/mail_test_util.h"
#include "tests/test_util.h"

namespace ringproxy::imap {
namespace {

using testing::B64;
using testing::ScriptedStream;

class UpstreamLoginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = testing::MakeReactor();
    credentials_.tag = "a1";
    credentials_.user = "jd";
    credentials_.password = "secret";
    credentials_.client_name = "Thunderbird";
    credentials_.client_version = "115";
    request_.credentials = &credentials_;
    request_.login = "john@example.com";
    request_.client_ip = "198.51.100.7";
    request_.local_ip = "192.0.2.10";
  }
  UpstreamLoginOutcome Run(ScriptedStream* upstream) {
    return RunUntilComplete(*reactor_, LoginUpstream(upstream, &settings_, &request_));
  }
  std::unique_ptr<Reactor> reactor_;
  mail::Credentials credentials_;
  UpstreamLoginSettings settings_;
  UpstreamLoginRequest request_;
};

// The ID names the proxy in "name" and "version" (its own ID's, spec §4.2) and the
// client in X-VIA.
TEST_F(UpstreamLoginTest, ZimbraIdThenLoginWithLiteralsAndTheClientsTag) {
  settings_.ua_name = "ringproxy";
  settings_.ua_version = "1.0";
  ScriptedStream up({"* OK IMAP4rev1 server ready\r\n", "* ID NIL\r\na1 OK ID completed\r\n",
                     "+ ready for literal\r\n", "+ ready for literal\r\n",
                     "* OK [ALERT] maintenance tonight\r\n* CAPABILITY IMAP4rev1\r\n"
                     "a1 OK [CAPABILITY IMAP4rev1 IDLE] LOGIN completed\r\n"});
  UpstreamLoginOutcome o = Run(&up);
  EXPECT_EQ(o.status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(up.written(),
            "a1 ID (\"X-ORIGINATING-IP\" \"198.51.100.7\" \"name\" \"ringproxy\" \"version\" "
            "\"1.0\" \"X-VIA\" \"Thunderbird/115,192.0.2.10(ringproxy)\")\r\n"
            "a1 LOGIN {16}\r\njohn@example.com {6}\r\nsecret\r\n");
  EXPECT_EQ(o.reply_line, "a1 OK [CAPABILITY IMAP4rev1 IDLE] LOGIN completed\r\n");
  EXPECT_EQ(o.alerts, "* OK [ALERT] maintenance tonight\r\n");
}

TEST_F(UpstreamLoginTest, ZimbraIdWithoutAClientId) {
  credentials_.client_name.clear();
  credentials_.client_version.clear();
  settings_.literal_login = false;
  settings_.pipeline = false;  // Zimbra's order: ID's reply before the login is sent
  ScriptedStream up({"* OK ready\r\n", "a1 OK ID done\r\n", "a1 OK Logged in\r\n"});
  EXPECT_EQ(Run(&up).status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(up.written(),
            "a1 ID (\"X-ORIGINATING-IP\" \"198.51.100.7\" \"name\" \"ZCS\" \"version\" "
            "\"Unknown Version\" \"X-VIA\" \"192.0.2.10(ringproxy)\")\r\n"
            "a1 LOGIN \"john@example.com\" \"secret\"\r\n");
}

// An 8-bit client name cannot be a quoted string: X-VIA keeps the proxy hop without it
// (the whole X-VIA was NIL).
TEST_F(UpstreamLoginTest, AnEightBitClientNameLeavesXViaWithTheProxyHop) {
  credentials_.client_name = "Mail f\xc3\xbcr iOS";
  settings_.literal_login = false;
  settings_.pipeline = false;
  ScriptedStream up({"* OK ready\r\n", "a1 OK ID done\r\n", "a1 OK Logged in\r\n"});
  EXPECT_EQ(Run(&up).status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(up.written(),
            "a1 ID (\"X-ORIGINATING-IP\" \"198.51.100.7\" \"name\" \"ZCS\" \"version\" "
            "\"Unknown Version\" \"X-VIA\" \"192.0.2.10(ringproxy)\")\r\n"
            "a1 LOGIN \"john@example.com\" \"secret\"\r\n");
}

TEST_F(UpstreamLoginTest, LiteralPlusLoginGoesWithTheIdInOneWrite) {
  // Replies in the other order, an alert between them: each is known by its tag.
  ScriptedStream up({"* OK [CAPABILITY IMAP4rev1 ID literal+ SASL-IR] ready\r\n",
                     "a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n",
                     "* OK [ALERT] quota nearly full\r\n* ID NIL\r\na1.ID OK ID done\r\n"});
  UpstreamLoginOutcome o = Run(&up);
  EXPECT_EQ(o.status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(up.writes(), 1);
  EXPECT_EQ(
      up.written(),
      "a1.ID ID (\"X-ORIGINATING-IP\" \"198.51.100.7\" \"name\" \"ZCS\" "
      "\"version\" \"Unknown Version\" \"X-VIA\" \"Thunderbird/115,192.0.2.10(ringproxy)\")\r\n"
      "a1 LOGIN {16+}\r\njohn@example.com {6+}\r\nsecret\r\n");
  EXPECT_EQ(o.reply_line, "a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n");
  EXPECT_EQ(o.alerts, "* OK [ALERT] quota nearly full\r\n");
}

TEST_F(UpstreamLoginTest, WithoutPipeliningLiteralPlusStillSavesTheContinuations) {
  settings_.pipeline = false;
  settings_.flavour = Flavour::kDovecot;
  ScriptedStream up({"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n", "a1 OK ID done\r\n",
                     "a1 OK Logged in\r\n"});
  EXPECT_EQ(Run(&up).status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(up.writes(), 2);
  EXPECT_EQ(up.written(),
            "a1 ID (\"x-originating-ip\" \"198.51.100.7\")\r\n"
            "a1 LOGIN {16+}\r\njohn@example.com {6+}\r\nsecret\r\n");
}

TEST_F(UpstreamLoginTest, LiteralMinusOnlyUpTo4096Bytes) {
  settings_.flavour = Flavour::kPlain;
  ScriptedStream small({"* OK [CAPABILITY IMAP4rev1 LITERAL-] ready\r\n", "a1 OK in\r\n"});
  EXPECT_EQ(Run(&small).status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(small.written(), "a1 LOGIN {16+}\r\njohn@example.com {6+}\r\nsecret\r\n");
  credentials_.password = std::string(4097, 'p');
  ScriptedStream big(
      {"* OK [CAPABILITY IMAP4rev1 LITERAL-] ready\r\n", "+ go\r\n", "+ go\r\n", "a1 OK in\r\n"});
  EXPECT_EQ(Run(&big).status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(big.written(),
            "a1 LOGIN {16}\r\njohn@example.com {4097}\r\n" + credentials_.password + "\r\n");
}

TEST_F(UpstreamLoginTest, SaslIrPlainGoesWithTheIdAndARefusedIdFailsTheLogin) {
  settings_.flavour = Flavour::kDovecot;
  credentials_.mechanism = mail::Mechanism::kAuthenticatePlain;
  ScriptedStream up({"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] Dovecot ready.\r\n",
                     "a1.ID BAD no\r\na1 OK Logged in\r\n"});
  UpstreamLoginOutcome o = Run(&up);
  EXPECT_EQ(o.status, UpstreamLoginStatus::kIdFailed);
  EXPECT_EQ(o.reply_line, "a1.ID BAD no\r\n");
  EXPECT_EQ(up.writes(), 1);
  EXPECT_EQ(up.written(),
            "a1.ID ID (\"x-originating-ip\" \"198.51.100.7\")\r\n"
            "a1 AUTHENTICATE PLAIN " +
                B64(std::string("\0john@example.com\0secret", 24)) + "\r\n");
}

TEST_F(UpstreamLoginTest, DovecotIdAndAuthenticatePlainRefused) {
  settings_.flavour = Flavour::kDovecot;
  credentials_.mechanism = mail::Mechanism::kAuthenticatePlain;
  ScriptedStream up({"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n", "a1 OK ID completed.\r\n",
                     "+ \r\n", "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"});
  UpstreamLoginOutcome o = Run(&up);
  EXPECT_EQ(o.status, UpstreamLoginStatus::kRefused);
  EXPECT_EQ(o.reply_line, "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
  EXPECT_EQ(up.written(),
            "a1 ID (\"x-originating-ip\" \"198.51.100.7\")\r\n"
            "a1 AUTHENTICATE PLAIN\r\n" +
                B64(std::string("\0john@example.com\0secret", 24)) + "\r\n");
}

TEST_F(UpstreamLoginTest, PlainFlavourImpersonation) {
  settings_.flavour = Flavour::kPlain;
  credentials_.mechanism = mail::Mechanism::kAuthenticatePlain;
  request_.authzid_login = "boss@example.com";
  ScriptedStream up({"* OK ready\r\n", "+\r\n", "a1 OK done\r\n"});
  EXPECT_EQ(Run(&up).status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(up.written(), "a1 AUTHENTICATE PLAIN\r\n" +
                              B64(std::string("boss@example.com\0jd\0secret", 26)) + "\r\n");
}

TEST_F(UpstreamLoginTest, Failures) {
  ScriptedStream bye({"* BYE go away\r\n"});
  EXPECT_EQ(Run(&bye).status, UpstreamLoginStatus::kBadGreeting);
  ScriptedStream preauth({"* PREAUTH welcome\r\n"});
  EXPECT_EQ(Run(&preauth).status, UpstreamLoginStatus::kBadGreeting);
  ScriptedStream id_refused({"* OK\r\n", "a1 BAD unknown command\r\n"});
  UpstreamLoginOutcome o = Run(&id_refused);
  EXPECT_EQ(o.status, UpstreamLoginStatus::kIdFailed);
  EXPECT_EQ(o.reply_line, "a1 BAD unknown command\r\n");
  ScriptedStream literal_refused({"* OK\r\n", "a1 OK\r\n", "a1 NO literal too big\r\n"});
  o = Run(&literal_refused);
  EXPECT_EQ(o.status, UpstreamLoginStatus::kRefused);
  EXPECT_EQ(o.reply_line, "a1 NO literal too big\r\n");
  ScriptedStream closed({"* OK\r\n", "a1 OK\r\n", "+\r\n"});
  EXPECT_EQ(Run(&closed).status, UpstreamLoginStatus::kClosed);
  ScriptedStream silent({"* OK\r\n", ScriptedStream::kTimeout});
  EXPECT_EQ(Run(&silent).status, UpstreamLoginStatus::kTimeout);
  settings_.line_bytes_max = 16;
  ScriptedStream long_line({"* OK " + std::string(64, 'x') + "\r\n"});
  EXPECT_EQ(Run(&long_line).status, UpstreamLoginStatus::kProtocolError);
}

// literal_login = false asks for quoted strings; 8-bit text cannot be one (without
// UTF8=ACCEPT), so that login goes as literals rather than failing.
TEST_F(UpstreamLoginTest, AServerThatNeverAnswersTheLoginEndsItAfter64Lines) {
  // Each untagged line in time, the tagged reply never: a protocol error, not a login
  // held for as long as the server likes, and the alerts it keeps are bounded.
  settings_.literal_login = false;
  settings_.pipeline = false;
  const std::string alert = "* OK [ALERT] " + std::string(1000, 'x') + "\r\n";
  std::vector<std::string> script = {"* OK ready\r\n", "a1 OK ID done\r\n"};
  for (int i = 0; i < 70; ++i) script.push_back(alert);
  ScriptedStream up(script);
  UpstreamLoginOutcome o = Run(&up);
  EXPECT_EQ(o.status, UpstreamLoginStatus::kProtocolError);
  EXPECT_EQ(o.alerts.size(), 8 * alert.size());  // 8 KiB of them at most
  // 62 untagged lines and the tagged reply after greeting and ID: still a login.
  std::vector<std::string> ok = {"* OK ready\r\n", "a1 OK ID done\r\n"};
  for (int i = 0; i < 61; ++i) ok.push_back("* CAPABILITY IMAP4rev1\r\n");
  ok.push_back("a1 OK Logged in\r\n");
  ScriptedStream up2(ok);
  EXPECT_EQ(Run(&up2).status, UpstreamLoginStatus::kOk);
}

TEST_F(UpstreamLoginTest, QuotedLoginFallsBackToLiteralsForEightBitText) {
  settings_.literal_login = false;
  settings_.flavour = Flavour::kPlain;
  credentials_.password = "s\xc3\xa9same";
  ScriptedStream up({"* OK ready\r\n", "+ go\r\n", "+ go\r\n", "a1 OK Logged in\r\n"});
  EXPECT_EQ(Run(&up).status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(up.written(), "a1 LOGIN {16}\r\njohn@example.com {7}\r\ns\xc3\xa9same\r\n");
  credentials_.password = "plain";
  ScriptedStream quoted({"* OK ready\r\n", "a1 OK Logged in\r\n"});
  EXPECT_EQ(Run(&quoted).status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(quoted.written(), "a1 LOGIN \"john@example.com\" \"plain\"\r\n");
}

}  // namespace
}  // namespace ringproxy::imap
