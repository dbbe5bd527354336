// The POP3 dialogue before login (proto/pop3/preauth.h) through a scripted transport:
// exact replies, CAPA by state, STLS and its injection case, USER/PASS and AUTH in
// every form, the limits, and every way it ends.
#include "proto/pop3/preauth.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/proto/mail_test_util.h"
#include "tests/test_util.h"

namespace ringproxy::pop3 {
namespace {

using mail::Credentials;
using mail::Mechanism;
using mail::PreauthEnd;
using testing::B64;
using testing::FakeUpgrader;
using testing::ScriptedStream;

class Pop3PreauthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = testing::MakeReactor();
    settings_.capabilities = {"TOP", "UIDL"};
  }
  PreauthEnd Run(ScriptedStream* plain, bool tls = false, FakeUpgrader* upgrader = nullptr) {
    ByteStream* stream = plain;
    return RunUntilComplete(*reactor_,
                            RunPreauth(&stream, &settings_, tls, upgrader, &credentials_));
  }
  std::unique_ptr<Reactor> reactor_;
  PreauthSettings settings_;
  Credentials credentials_;
};

constexpr char kGreeting[] = "+OK POP3 ready\r\n";

TEST_F(Pop3PreauthTest, StlsOnlyHidesCleartextLoginsThenLogsInInsideTls) {
  ScriptedStream plain({"CAPA\r\n", "USER john\r\n",
                        "AUTH PLAIN " + B64(std::string("\0j\0p", 4)) + "\r\n", "STLS\r\n"});
  ScriptedStream secured({"capa\r\n", "USER john\r\n", "PASS correct horse\r\n"});
  FakeUpgrader upgrader(&secured);
  EXPECT_EQ(Run(&plain, false, &upgrader), PreauthEnd::kCredentials);
  EXPECT_EQ(plain.written(), std::string(kGreeting) +
                                 "+OK Capability list follows\r\nTOP\r\nUIDL\r\nSTLS\r\n.\r\n"
                                 "-ERR cleartext logins disabled\r\n"
                                 "-ERR cleartext logins disabled\r\n"
                                 "+OK begin TLS negotiation\r\n");
  EXPECT_EQ(secured.written(),
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n"
            "+OK\r\n");
  EXPECT_EQ(credentials_.mechanism, Mechanism::kLogin);
  EXPECT_EQ(credentials_.user, "john");
  EXPECT_EQ(credentials_.password, "correct horse");
}

TEST_F(Pop3PreauthTest, BareAuthListsTheMechanismsCapaOffers) {
  // In the clear with STLS required: nothing offered, and not an invalid command.
  settings_.bad_commands_max = 1;
  ScriptedStream plain({"AUTH\r\n", "STLS\r\n"});
  ScriptedStream secured({"AUTH\r\n", "USER john\r\n", "PASS pw\r\n"});
  FakeUpgrader upgrader(&secured);
  EXPECT_EQ(Run(&plain, false, &upgrader), PreauthEnd::kCredentials);
  EXPECT_EQ(plain.written(), std::string(kGreeting) +
                                 "+OK methods supported:\r\n.\r\n"
                                 "+OK begin TLS negotiation\r\n");
  EXPECT_EQ(secured.written(), "+OK methods supported:\r\nPLAIN\r\nLOGIN\r\n.\r\n+OK\r\n");
}

TEST_F(Pop3PreauthTest, PlaintextPipelinedBehindStlsIsNeverAnswered) {
  ScriptedStream plain({"STLS\r\nCAPA\r\n"});
  ScriptedStream secured({"QUIT\r\n"});
  FakeUpgrader upgrader(&secured);
  EXPECT_EQ(Run(&plain, false, &upgrader), PreauthEnd::kLogout);
  EXPECT_EQ(plain.written(), std::string(kGreeting) + "+OK begin TLS negotiation\r\n");
  EXPECT_EQ(secured.written(), "+OK bye\r\n");
  EXPECT_EQ(upgrader.left_in_plain, 0u);
}

TEST_F(Pop3PreauthTest, StlsRefusals) {
  settings_.stls = StlsMode::kOff;
  ScriptedStream a({"STLS\r\n", "CAPA\r\n"});
  Run(&a);
  EXPECT_EQ(a.written(), std::string(kGreeting) +
                             "-ERR STLS not available\r\n"
                             "+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n"
                             "SASL PLAIN LOGIN\r\n.\r\n");
  settings_.stls = StlsMode::kOn;
  ScriptedStream unused;
  FakeUpgrader upgrader(&unused);
  ScriptedStream b({"STLS\r\n"});
  Run(&b, true, &upgrader);
  EXPECT_EQ(b.written(), std::string(kGreeting) + "-ERR TLS already active\r\n");
  EXPECT_EQ(upgrader.upgrades, 0);
}

TEST_F(Pop3PreauthTest, UserPassAndTheirLimits) {
  settings_.stls = StlsMode::kOff;
  settings_.login_bytes_max = 8;
  settings_.password_bytes_max = 4;
  ScriptedStream s({"PASS x\r\n", "USER 123456789\r\n", "USER \r\n", "USER 12345678\r\n",
                    "PASS 12345\r\n", "USER 12345678\r\n", "PASS 1 34\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kCredentials);
  EXPECT_EQ(s.written(), std::string(kGreeting) +
                             "-ERR USER first\r\n-ERR invalid username/password\r\n"
                             "-ERR USER takes a name\r\n+OK\r\n"
                             "-ERR invalid username/password\r\n+OK\r\n");
  EXPECT_EQ(credentials_.user, "12345678");
  EXPECT_EQ(credentials_.password, "1 34");
}

// As nginx and Zimbra: the name is the rest of the line (the spaces around it dropped).
TEST_F(Pop3PreauthTest, UserNameMayHoldSpaces) {
  settings_.stls = StlsMode::kOff;
  ScriptedStream s({"USER  john smith \r\n", "PASS pw\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kCredentials);
  EXPECT_EQ(s.written(), std::string(kGreeting) + "+OK\r\n");
  EXPECT_EQ(credentials_.user, "john smith");
  EXPECT_EQ(credentials_.password, "pw");
}

TEST_F(Pop3PreauthTest, PassWithoutAPasswordIsAFailedPass) {
  settings_.stls = StlsMode::kOff;
  ScriptedStream s(
      {"USER john\r\n", "PASS\r\n", "PASS secret\r\n", "USER jane\r\n", "PASS secret\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kCredentials);
  EXPECT_EQ(s.written(), std::string(kGreeting) +
                             "+OK\r\n-ERR PASS takes a password\r\n-ERR USER first\r\n+OK\r\n");
  EXPECT_EQ(credentials_.user, "jane");
  EXPECT_EQ(credentials_.password, "secret");
}

// RFC 1939 §7: after USER, PASS or QUIT (CAPA and NOOP harmless). Anything else is an
// invalid command that ends the USER's turn, as in nginx: the name typed before an
// aborted AUTH, a second USER (valid or too long), STLS or a bad line is never logged
// in with by a later PASS.
TEST_F(Pop3PreauthTest, OnlyPassFollowsUserAndAnythingElseForgetsTheName) {
  settings_.stls = StlsMode::kOn;
  settings_.login_bytes_max = 8;
  for (const std::string& between :
       {std::string("AUTH PLAIN\r\n"), std::string("USER bob\r\n"),
        std::string("USER 123456789\r\n"), std::string("STLS\r\n"), std::string("FOO\r\n")}) {
    ScriptedStream s({"USER alice\r\n", between, "PASS pw\r\n", "QUIT\r\n"});
    EXPECT_EQ(Run(&s), PreauthEnd::kLogout) << between;
    EXPECT_EQ(s.written(), std::string(kGreeting) +
                               "+OK\r\n-ERR invalid command\r\n-ERR USER first\r\n+OK bye\r\n")
        << between;
  }
  ScriptedStream ok({"USER alice\r\n", "CAPA\r\n", "NOOP\r\n", "PASS pw\r\n"});
  EXPECT_EQ(Run(&ok), PreauthEnd::kCredentials);
  EXPECT_EQ(credentials_.user, "alice");
}

TEST_F(Pop3PreauthTest, APasswordWithNulCrOrLfFailsTheAttempt) {
  settings_.stls = StlsMode::kOff;
  ScriptedStream s({"AUTH LOGIN\r\n", B64("john") + "\r\n", B64(std::string("p\0w", 3)) + "\r\n",
                    "AUTH LOGIN " + B64("john") + "\r\n", B64("p\rw") + "\r\n",
                    "AUTH PLAIN " + B64(std::string("\0john\0p\nw", 9)) + "\r\n", "USER john\r\n",
                    "PASS pw\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kCredentials);
  EXPECT_EQ(s.written(), std::string(kGreeting) +
                             "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n-ERR authentication failed\r\n"
                             "+ UGFzc3dvcmQ6\r\n-ERR authentication failed\r\n"
                             "-ERR authentication failed\r\n+OK\r\n");
  EXPECT_EQ(credentials_.password, "pw");
}

TEST_F(Pop3PreauthTest, AuthPlainAndLogin) {
  settings_.stls = StlsMode::kOff;
  const std::string msg = B64(std::string("\0john\0secret", 12));
  ScriptedStream ir({"AUTH PLAIN " + msg + "\r\n"});
  EXPECT_EQ(Run(&ir), PreauthEnd::kCredentials);
  EXPECT_EQ(credentials_.mechanism, Mechanism::kAuthenticatePlain);
  EXPECT_EQ(credentials_.user, "john");
  ScriptedStream challenge({"AUTH PLAIN\r\n", "*\r\n", "AUTH PLAIN\r\n", msg + "\r\n"});
  EXPECT_EQ(Run(&challenge), PreauthEnd::kCredentials);
  EXPECT_EQ(challenge.written(),
            std::string(kGreeting) + "+ \r\n-ERR authentication aborted\r\n+ \r\n");
  ScriptedStream login({"AUTH LOGIN\r\n", B64("john") + "\r\n", B64("pw") + "\r\n"});
  EXPECT_EQ(Run(&login), PreauthEnd::kCredentials);
  EXPECT_EQ(login.written(), std::string(kGreeting) + "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(credentials_.mechanism, Mechanism::kAuthenticateLogin);
  EXPECT_EQ(credentials_.password, "pw");
  ScriptedStream refused({"AUTH CRAM-MD5\r\n",
                          "AUTH PLAIN " + B64(std::string("boss\0j\0p", 8)) + "\r\n",
                          "AUTH PLAIN !!!!\r\n"});
  EXPECT_EQ(Run(&refused), PreauthEnd::kClientClosed);
  EXPECT_EQ(refused.written(), std::string(kGreeting) +
                                   "-ERR mechanism not supported\r\n"
                                   "-ERR authentication failed\r\n-ERR invalid base64\r\n");
}

TEST_F(Pop3PreauthTest, RefusedLoginsAndMechanismsCountTowardTheLimit) {
  // Else a client repeats them until the idle timeout, and no log line says so.
  settings_.bad_commands_max = 3;
  settings_.stls = StlsMode::kOnly;
  ScriptedStream unused;
  FakeUpgrader upgrader(&unused);
  ScriptedStream s({"USER a\r\n", "AUTH CRAM-MD5\r\n", "AUTH PLAIN\r\n", "NOOP\r\n"});
  EXPECT_EQ(Run(&s, false, &upgrader), PreauthEnd::kTooManyErrors);
  EXPECT_EQ(s.written(),
            std::string(kGreeting) +
                "-ERR cleartext logins disabled\r\n-ERR mechanism not supported\r\n"
                "-ERR cleartext logins disabled\r\n-ERR too many invalid commands\r\n");
  settings_.stls = StlsMode::kOff;
  ScriptedStream aborted({"AUTH PLAIN\r\n", "*\r\n", "AUTH LOGIN\r\n", "*\r\n", "AUTH X\r\n"});
  EXPECT_EQ(Run(&aborted), PreauthEnd::kTooManyErrors);
  EXPECT_EQ(aborted.written(), std::string(kGreeting) +
                                   "+ \r\n-ERR authentication aborted\r\n"
                                   "+ VXNlcm5hbWU6\r\n-ERR authentication aborted\r\n"
                                   "-ERR mechanism not supported\r\n"
                                   "-ERR too many invalid commands\r\n");
}

TEST_F(Pop3PreauthTest, InvalidCommandsUntilTheLimitAndEveryEnd) {
  settings_.bad_commands_max = 3;
  ScriptedStream s({"RETR 1\r\n", "\r\n", "NOOP x\r\n", "NOOP\r\n"});
  EXPECT_EQ(Run(&s), PreauthEnd::kTooManyErrors);
  EXPECT_EQ(s.written(), std::string(kGreeting) +
                             "-ERR invalid command\r\n-ERR invalid command\r\n"
                             "-ERR no arguments expected\r\n-ERR too many invalid commands\r\n");
  settings_.line_bytes_max = 32;
  ScriptedStream long_line({"USER " + std::string(64, 'x') + "\r\n"});
  EXPECT_EQ(Run(&long_line), PreauthEnd::kLineTooLong);
  EXPECT_EQ(long_line.written(), std::string(kGreeting) + "-ERR line too long\r\n");
  ScriptedStream idle({ScriptedStream::kTimeout});
  EXPECT_EQ(Run(&idle), PreauthEnd::kTimeout);
  EXPECT_EQ(idle.written(), std::string(kGreeting) + "-ERR autologout; idle for too long\r\n");
  ScriptedStream gone({"NOOP\r\n"});
  EXPECT_EQ(Run(&gone), PreauthEnd::kClientClosed);
  EXPECT_EQ(gone.written(), std::string(kGreeting) + "+OK\r\n");
  ScriptedStream stopped({"NOOP\r\n"});
  stopped.Abort();
  EXPECT_EQ(Run(&stopped), PreauthEnd::kStopped);
}

}  // namespace
}  // namespace ringproxy::pop3
