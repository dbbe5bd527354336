// POP3 login on the mailbox server (proto/pop3/upstream_login.h) against a scripted
// upstream: the exact bytes for USER/PASS and AUTH PLAIN, XOIP, and each failure.
#include "proto/pop3/upstream_login.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/proto/mail_test_util.h"
#include "tests/test_util.h"

namespace ringproxy::pop3 {
namespace {

using mail::UpstreamLoginOutcome;
using mail::UpstreamLoginStatus;
using testing::B64;
using testing::ScriptedStream;

class Pop3UpstreamLoginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = testing::MakeReactor();
    credentials_.user = "jd";
    credentials_.password = "correct horse";
    request_.credentials = &credentials_;
    request_.login = "john@example.com";
    request_.client_ip = "198.51.100.7";
  }
  UpstreamLoginOutcome Run(ScriptedStream* upstream) {
    return RunUntilComplete(*reactor_, LoginUpstream(upstream, &settings_, &request_));
  }
  std::unique_ptr<Reactor> reactor_;
  mail::Credentials credentials_;
  UpstreamLoginSettings settings_;
  UpstreamLoginRequest request_;
};

TEST_F(Pop3UpstreamLoginTest, XoipThenUserAndPass) {
  ScriptedStream up(
      {"+OK Zimbra POP3 server ready\r\n", "+OK\r\n", "+OK hello\r\n", "+OK server ready\r\n"});
  UpstreamLoginOutcome o = Run(&up);
  EXPECT_EQ(o.status, UpstreamLoginStatus::kOk);
  EXPECT_EQ(o.reply_line, "+OK server ready\r\n");
  EXPECT_EQ(up.written(), "XOIP 198.51.100.7\r\nUSER john@example.com\r\nPASS correct horse\r\n");
}

TEST_F(Pop3UpstreamLoginTest, AuthPlainWithoutXoip) {
  settings_.send_xoip = false;
  credentials_.mechanism = mail::Mechanism::kAuthenticatePlain;
  ScriptedStream up({"+OK Dovecot ready.\r\n", "+ \r\n", "-ERR [AUTH] Authentication failed.\r\n"});
  UpstreamLoginOutcome o = Run(&up);
  EXPECT_EQ(o.status, UpstreamLoginStatus::kRefused);
  EXPECT_EQ(o.reply_line, "-ERR [AUTH] Authentication failed.\r\n");
  EXPECT_EQ(up.written(),
            "AUTH PLAIN\r\n" + B64(std::string("\0john@example.com\0correct horse", 31)) + "\r\n");
}

TEST_F(Pop3UpstreamLoginTest, Failures) {
  ScriptedStream bad({"-ERR busy\r\n"});
  EXPECT_EQ(Run(&bad).status, UpstreamLoginStatus::kBadGreeting);
  ScriptedStream xoip({"+OK\r\n", "-ERR unknown command\r\n"});
  EXPECT_EQ(Run(&xoip).status, UpstreamLoginStatus::kIdFailed);
  ScriptedStream user({"+OK\r\n", "+OK\r\n", "-ERR no such user\r\n"});
  EXPECT_EQ(Run(&user).status, UpstreamLoginStatus::kRefused);
  ScriptedStream garbage({"+OK\r\n", "hello?\r\n"});
  EXPECT_EQ(Run(&garbage).status, UpstreamLoginStatus::kProtocolError);
  ScriptedStream closed({"+OK\r\n", "+OK\r\n"});
  EXPECT_EQ(Run(&closed).status, UpstreamLoginStatus::kClosed);
  ScriptedStream silent({"+OK\r\n", ScriptedStream::kTimeout});
  EXPECT_EQ(Run(&silent).status, UpstreamLoginStatus::kTimeout);
  // Answers of the wrong kind are a server out of step, not a refused password.
  ScriptedStream continuation_to_pass({"+OK\r\n", "+OK\r\n", "+OK\r\n", "+ more?\r\n"});
  EXPECT_EQ(Run(&continuation_to_pass).status, UpstreamLoginStatus::kProtocolError);
  ScriptedStream continuation_to_user({"+OK\r\n", "+OK\r\n", "+ \r\n"});
  EXPECT_EQ(Run(&continuation_to_user).status, UpstreamLoginStatus::kProtocolError);
  credentials_.mechanism = mail::Mechanism::kAuthenticatePlain;
  ScriptedStream ok_to_auth({"+OK\r\n", "+OK\r\n", "+OK\r\n"});
  EXPECT_EQ(Run(&ok_to_auth).status, UpstreamLoginStatus::kProtocolError);
  ScriptedStream continuation_to_plain({"+OK\r\n", "+OK\r\n", "+ \r\n", "+ \r\n"});
  EXPECT_EQ(Run(&continuation_to_plain).status, UpstreamLoginStatus::kProtocolError);
  credentials_.mechanism = mail::Mechanism::kLogin;
  credentials_.password = "a\r\nPASS b";
  ScriptedStream injected({"+OK\r\n", "+OK\r\n"});
  EXPECT_EQ(Run(&injected).status, UpstreamLoginStatus::kProtocolError);
  EXPECT_EQ(injected.written(), "XOIP 198.51.100.7\r\n");
}

}  // namespace
}  // namespace ringproxy::pop3
