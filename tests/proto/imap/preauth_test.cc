// The IMAP dialogue before login (proto/imap/preauth.h) through a scripted transport:
// the exact replies for each command and state, STARTTLS (and its injection case),
// LOGIN and AUTHENTICATE in every form, the limits, and every way it ends.
#include "proto/imap/preauth.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/proto/mail_test_util.h"
#include "tests/test_util.h"

namespace ringproxy::imap {
namespace {

using testing::B64;
using testing::FakeUpgrader;
using testing::ScriptedStream;

class PreauthTest : public ::testing::Test {
 protected:
  void SetUp() override { reactor_ = testing::MakeReactor(); }

  PreauthEnd Run(ScriptedStream* plain, bool tls = false, FakeUpgrader* upgrader = nullptr) {
    ByteStream* stream = plain;
    return RunUntilComplete(*reactor_,
                            RunPreauth(&stream, &settings_, tls, upgrader, &credentials_));
  }

  std::unique_ptr<Reactor> reactor_;
  PreauthSettings settings_;
  Credentials credentials_;
};

constexpr char kGreeting[] = "* OK IMAP4rev1 proxy server ready\r\n";

TEST_F(PreauthTest, StartTlsOnlyRefusesCleartextThenLogsInInsideTls) {
  settings_.capabilities = {"IMAP4rev1", "ID"};
  ScriptedStream plain({"a1 CAPABILITY\r\n", "a2 LOGIN john secret\r\n",
                        "a3 AUTHENTICATE PLAIN " + B64(std::string("\0john\0secret", 12)) + "\r\n",
                        "a4 STARTTLS\r\n"});
  ScriptedStream secured({"b1 CAPABILITY\r\n", "b2 LOGIN john secret\r\n"});
  FakeUpgrader upgrader(&secured);
  EXPECT_EQ(Run(&plain, false, &upgrader), PreauthEnd::kCredentials);
  EXPECT_EQ(plain.written(), std::string(kGreeting) +
                                 "* CAPABILITY IMAP4rev1 ID STARTTLS LOGINDISABLED\r\n"
                                 "a1 OK completed\r\n"
                                 "a2 NO [PRIVACYREQUIRED] cleartext logins disabled\r\n"
                                 "a3 NO [PRIVACYREQUIRED] cleartext logins disabled\r\n"
                                 "a4 OK completed\r\n");
  EXPECT_EQ(upgrader.upgrades, 1);
  EXPECT_EQ(secured.written(),
            "* CAPABILITY IMAP4rev1 ID AUTH=LOGIN AUTH=PLAIN\r\nb1 OK completed\r\n");
  EXPECT_EQ(credentials_.tag, "b2");
  EXPECT_EQ(credentials_.mechanism, Mechanism::kLogin);
  EXPECT_EQ(credentials_.user, "john");
  EXPECT_EQ(credentials_.password, "secret");
}

TEST_F(PreauthTest, PlaintextPipelinedBehindStartTlsIsNeverAnswered) {
  settings_.capabilities = {"IMAP4rev1"};
  ScriptedStream plain({"a STARTTLS\r\nb CAPABILITY\r\n"});
  ScriptedStream secured({"c LOGOUT\r\n"});
  FakeUpgrader upgrader(&secured);
  EXPECT_EQ(Run(&plain, false, &upgrader), PreauthEnd::kLogout);
  EXPECT_EQ(plain.written(), std::string(kGreeting) + "a OK completed\r\n");
  EXPECT_EQ(secured.written(),
            "* BYE Zimbra IMAP server terminating connection\r\nc OK completed\r\n");
  EXPECT_EQ(upgrader.left_in_plain, 0u);
}

TEST_F(PreauthTest, CapabilityByState) {
  settings_.capabilities = {"IMAP4rev1"};
  settings_.starttls = StartTlsMode::kOn;
  ScriptedStream a({"a CAPABILITY\r\n"});
  ScriptedStream unused;
  FakeUpgrader upgrader(&unused);
  Run(&a, false, &upgrader);
  EXPECT_EQ(a.written(), std::string(kGreeting) +
                             "* CAPABILITY IMAP4rev1 AUTH=LOGIN AUTH=PLAIN STARTTLS\r\n"
                             "a OK completed\r\n");
  settings_.starttls = StartTlsMode::kOff;
  settings_.auth_login = false;
  ScriptedStream b({"a CAPABILITY\r\na STARTTLS\r\n"});
  Run(&b, false, &upgrader);
  EXPECT_EQ(b.written(), std::string(kGreeting) +
                             "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na OK completed\r\n"
                             "a BAD STARTTLS not available\r\n");
  ScriptedStream c({"a STARTTLS\r\n"});  // implicit TLS
  Run(&c, true, &upgrader);
  EXPECT_EQ(c.written(), std::string(kGreeting) + "a BAD TLS already active\r\n");
  EXPECT_EQ(upgrader.upgrades, 0);
}

TEST_F(PreauthTest, LoginWithLiteralsQuotedStringsAndPipelining) {
  settings_.starttls = StartTlsMode::kOff;
  ScriptedStream s({"a NOOP\r\nb LOGIN {4}\r\n", "john {8}\r\n", "pa\"ss wd\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kCredentials);
  EXPECT_EQ(s.written(), std::string(kGreeting) + "a OK completed\r\n+ \r\n+ \r\n");
  EXPECT_EQ(credentials_.user, "john");
  EXPECT_EQ(credentials_.password, "pa\"ss wd");
  ScriptedStream q({"c LOGIN \"j\\\"o\" \"x y\"\r\n"});
  EXPECT_EQ(Run(&q), PreauthEnd::kCredentials);
  EXPECT_EQ(credentials_.user, "j\"o");
  EXPECT_EQ(credentials_.password, "x y");
}

TEST_F(PreauthTest, LoginLimitsCrossedByOne) {
  settings_.starttls = StartTlsMode::kOff;
  settings_.login_bytes_max = 8;
  settings_.password_bytes_max = 4;
  ScriptedStream s({"a LOGIN 123456789 pw\r\n", "b LOGIN user 12345\r\n", "c LOGIN \"\" pw\r\n",
                    "d LOGIN one\r\n", "e LOGIN 12345678 1234\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kCredentials);
  EXPECT_EQ(s.written(), std::string(kGreeting) +
                             "a NO LOGIN failed\r\nb NO LOGIN failed\r\nc NO LOGIN failed\r\n"
                             "d BAD LOGIN takes a user name and a password\r\n");
  EXPECT_EQ(credentials_.tag, "e");
}

TEST_F(PreauthTest, AuthenticatePlainWithAndWithoutInitialResponse) {
  settings_.starttls = StartTlsMode::kOff;
  const std::string msg = B64(std::string("\0john\0secret", 12));
  ScriptedStream ir({"a AUTHENTICATE PLAIN " + msg + "\r\n"});
  EXPECT_EQ(Run(&ir), PreauthEnd::kCredentials);
  EXPECT_EQ(ir.written(), kGreeting);
  EXPECT_EQ(credentials_.mechanism, Mechanism::kAuthenticatePlain);
  EXPECT_EQ(credentials_.user, "john");
  EXPECT_EQ(credentials_.password, "secret");

  ScriptedStream challenge({"b authenticate plain\r\n", msg + "\r\n"});
  EXPECT_EQ(Run(&challenge), PreauthEnd::kCredentials);
  EXPECT_EQ(challenge.written(), std::string(kGreeting) + "+ \r\n");
  EXPECT_EQ(credentials_.tag, "b");

  ScriptedStream aborted({"c AUTHENTICATE PLAIN\r\n", "*\r\n", "d AUTHENTICATE PLAIN =\r\n",
                          "e AUTHENTICATE PLAIN\r\n", "not base64!\r\n",
                          "f AUTHENTICATE CRAM-MD5\r\n"});
  EXPECT_EQ(Run(&aborted), PreauthEnd::kClientClosed);
  EXPECT_EQ(aborted.written(), std::string(kGreeting) +
                                   "+ \r\nc BAD AUTHENTICATE aborted\r\n"
                                   "d NO AUTHENTICATE failed\r\n"
                                   "+ \r\ne BAD invalid base64\r\n"
                                   "f NO mechanism not supported\r\n");
}

TEST_F(PreauthTest, AnotherAuthorizationIdentityNeedsImpersonation) {
  settings_.starttls = StartTlsMode::kOff;
  const std::string as_admin = B64(std::string("boss\0john\0secret", 16));
  const std::string same = B64(std::string("john\0john\0secret", 16));
  ScriptedStream s(
      {"a AUTHENTICATE PLAIN " + as_admin + "\r\n", "b AUTHENTICATE PLAIN " + same + "\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kCredentials);
  EXPECT_EQ(s.written(), std::string(kGreeting) + "a NO AUTHENTICATE failed\r\n");
  EXPECT_EQ(credentials_.tag, "b");
  EXPECT_EQ(credentials_.authzid, "");  // the same identity is no impersonation
  settings_.allow_impersonation = true;
  ScriptedStream t({"c AUTHENTICATE PLAIN " + as_admin + "\r\n"});
  EXPECT_EQ(Run(&t), PreauthEnd::kCredentials);
  EXPECT_EQ(credentials_.authzid, "boss");
  EXPECT_EQ(credentials_.user, "john");
}

TEST_F(PreauthTest, AuthenticateLoginPromptsForBoth) {
  settings_.starttls = StartTlsMode::kOff;
  ScriptedStream s({"a AUTHENTICATE LOGIN\r\n", B64("john") + "\r\n", B64("secret") + "\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kCredentials);
  EXPECT_EQ(s.written(), std::string(kGreeting) + "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(credentials_.mechanism, Mechanism::kAuthenticateLogin);
  EXPECT_EQ(credentials_.user, "john");
  EXPECT_EQ(credentials_.password, "secret");
  ScriptedStream ir({"b AUTHENTICATE LOGIN " + B64("john") + "\r\n", B64("pw") + "\r\n"});
  EXPECT_EQ(Run(&ir), PreauthEnd::kCredentials);
  EXPECT_EQ(ir.written(), std::string(kGreeting) + "+ UGFzc3dvcmQ6\r\n");
}

// A decoded password with NUL, CR or LF cannot go upstream as typed (IMAP literals hold
// no NUL; a POP3 line ends at CR LF): the attempt fails here, the session goes on.
TEST_F(PreauthTest, APasswordWithNulCrOrLfFailsTheAttempt) {
  settings_.starttls = StartTlsMode::kOff;
  const std::string plain_crlf = B64(std::string("\0john\0se\r\ncret", 14));
  ScriptedStream s({"a AUTHENTICATE LOGIN\r\n", B64("john") + "\r\n",
                    B64(std::string("p\0w", 3)) + "\r\n", "b AUTHENTICATE LOGIN\r\n",
                    B64("john") + "\r\n", B64("p\nw") + "\r\n",
                    "c AUTHENTICATE PLAIN " + plain_crlf + "\r\n", "d LOGIN john pw\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kCredentials);
  EXPECT_EQ(s.written(), std::string(kGreeting) +
                             "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na NO AUTHENTICATE failed\r\n"
                             "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\nb NO AUTHENTICATE failed\r\n"
                             "c NO AUTHENTICATE failed\r\n");
  EXPECT_EQ(credentials_.password, "pw");
}

TEST_F(PreauthTest, IdIsAnsweredAndTheClientNameKept) {
  settings_.starttls = StartTlsMode::kOff;
  settings_.id_reply = {{"NAME", "Zimbra"}, {"VERSION", "10.1"}};
  std::string too_many = "b ID (";
  for (int i = 0; i < 31; ++i) too_many += "\"f" + std::to_string(i) + "\" \"v\" ";
  too_many.back() = ')';
  ScriptedStream s({"a ID (\"name\" \"Thunderbird\" \"version\" \"115\" \"os\" NIL)\r\n",
                    too_many + "\r\n", "c ID (\"" + std::string(31, 'f') + "\" \"v\")\r\n",
                    "d ID NIL\r\n", "e ID (\"x\")\r\n", "f LOGIN u p\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kCredentials);
  EXPECT_EQ(s.written(), std::string(kGreeting) +
                             "* ID (\"NAME\" \"Zimbra\" \"VERSION\" \"10.1\")\r\na OK completed\r\n"
                             "b BAD invalid ID arguments\r\nc BAD invalid ID arguments\r\n"
                             "* ID (\"NAME\" \"Zimbra\" \"VERSION\" \"10.1\")\r\nd OK completed\r\n"
                             "e BAD invalid ID arguments\r\n");
  EXPECT_EQ(credentials_.client_name, "Thunderbird");
  EXPECT_EQ(credentials_.client_version, "115");
}

TEST_F(PreauthTest, BadCommandsAreAnsweredUntilTheLimit) {
  settings_.bad_commands_max = 3;
  ScriptedStream s({"a SELECT INBOX\r\n", "* NOOP\r\n", "b NOOP extra\r\n", "c NOOP\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kTooManyErrors);
  EXPECT_EQ(s.written(), std::string(kGreeting) +
                             "a BAD invalid command\r\n* BAD bad tag\r\n"
                             "b BAD no arguments expected\r\n* BYE too many invalid commands\r\n");
}

TEST_F(PreauthTest, RefusedLoginsAndMechanismsCountTowardTheLimit) {
  // Else a client repeats them until the idle timeout, and no log line says so.
  settings_.bad_commands_max = 3;
  settings_.starttls = StartTlsMode::kOnly;
  ScriptedStream unused;
  FakeUpgrader upgrader(&unused);
  ScriptedStream s(
      {"a LOGIN u p\r\n", "b AUTHENTICATE GSSAPI\r\n", "c AUTHENTICATE PLAIN\r\n", "d NOOP\r\n"});
  EXPECT_EQ(Run(&s, false, &upgrader), PreauthEnd::kTooManyErrors);
  EXPECT_EQ(s.written(), std::string(kGreeting) +
                             "a NO [PRIVACYREQUIRED] cleartext logins disabled\r\n"
                             "b NO mechanism not supported\r\n"
                             "c NO [PRIVACYREQUIRED] cleartext logins disabled\r\n"
                             "* BYE too many invalid commands\r\n");
}

TEST_F(PreauthTest, AnOverlongLineIsRefusedAndEndsTheSession) {
  settings_.limits.line_bytes_max = 64;
  ScriptedStream s({"a LOGIN " + std::string(100, 'x') + "\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kLineTooLong);
  EXPECT_EQ(s.written(), std::string(kGreeting) + "a BAD line too long\r\n");
}

TEST_F(PreauthTest, AnOverlongAuthenticateResponseCompletesItsCommandWithBad) {
  settings_.starttls = StartTlsMode::kOff;
  settings_.limits.line_bytes_max = 64;
  ScriptedStream s({"a AUTHENTICATE PLAIN\r\n", std::string(100, 'A') + "\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kLineTooLong);
  EXPECT_EQ(s.written(), std::string(kGreeting) + "+ \r\na BAD line too long\r\n");
}

// line_bytes_max counts a line's CR LF, for a command and an AUTHENTICATE response
// alike: 62 characters fit in 64, 63 do not.
TEST_F(PreauthTest, ACommandAndAnAuthenticateResponseHaveTheSameLineLimit) {
  settings_.starttls = StartTlsMode::kOff;
  settings_.limits.line_bytes_max = 64;
  {
    ScriptedStream s({"a " + std::string(60, 'X') + "\r\n", "b " + std::string(61, 'X') + "\r\n"});
    EXPECT_EQ(Run(&s), PreauthEnd::kLineTooLong);
    EXPECT_EQ(s.written(),
              std::string(kGreeting) + "a BAD invalid command\r\nb BAD line too long\r\n");
  }
  {
    ScriptedStream s({"a AUTHENTICATE PLAIN\r\n", std::string(62, 'A') + "\r\n",
                      "b AUTHENTICATE PLAIN\r\n", std::string(63, 'A') + "\r\n"});
    EXPECT_EQ(Run(&s), PreauthEnd::kLineTooLong);
    EXPECT_EQ(s.written(), std::string(kGreeting) +
                               "+ \r\na BAD invalid base64\r\n+ \r\nb BAD line too long\r\n");
  }
}

TEST_F(PreauthTest, AnOverlongCommandIsRefusedAndEndsTheSession) {
  settings_.limits.command_bytes_max = 64;
  const std::string forty(40, 'x');
  ScriptedStream s({"a ID ({40+}\r\n" + forty + " {40+}\r\n" + forty + ")\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kLineTooLong);
  EXPECT_EQ(s.written(), std::string(kGreeting) + "a BAD command too long\r\n");
}

TEST_F(PreauthTest, EveryEnd) {
  ScriptedStream idle({ScriptedStream::kTimeout});
  EXPECT_EQ(Run(&idle), PreauthEnd::kTimeout);
  EXPECT_EQ(idle.written(),
            std::string(kGreeting) + "* BYE Zimbra IMAP server terminating connection\r\n");
  ScriptedStream gone({"a NOOP\r\n"});
  EXPECT_EQ(Run(&gone), PreauthEnd::kClientClosed);
  ScriptedStream mid_auth({"a AUTHENTICATE LOGIN\r\n", ScriptedStream::kTimeout});
  settings_.starttls = StartTlsMode::kOff;
  EXPECT_EQ(Run(&mid_auth), PreauthEnd::kTimeout);
  ScriptedStream stopped({"a NOOP\r\n"});
  stopped.Abort();
  EXPECT_EQ(Run(&stopped), PreauthEnd::kStopped);
  // The handshake after STARTTLS failed.
  settings_.starttls = StartTlsMode::kOn;
  class Failing final : public TlsUpgrader {
    Task<ByteStream*> Upgrade(ByteStream*) override { co_return nullptr; }
  } failing;
  ScriptedStream tls({"a STARTTLS\r\n"});
  ByteStream* stream = &tls;
  EXPECT_EQ(
      RunUntilComplete(*reactor_, RunPreauth(&stream, &settings_, false, &failing, &credentials_)),
      PreauthEnd::kTlsFailed);
}

}  // namespace
}  // namespace ringproxy::imap
