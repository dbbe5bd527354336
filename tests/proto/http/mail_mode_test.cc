// Web mail modes (proto/http/mail_mode.h): which requests go to the other scheme, the
// URL they go to, and that no request bounces between the two listeners.
#include "proto/http/mail_mode.h"

#include <string>

#include "gtest/gtest.h"

namespace ringproxy::http {
namespace {

struct Parsed {
  std::string text;
  RequestHead head;
};

ModeRedirect Ask(MailMode mode, bool https, std::string_view target, std::string_view cookie = "",
                 std::string_view host = "mail.example.com:8080", int other_port = 443) {
  Parsed p;
  p.text = "GET " + std::string(target) + " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n";
  if (!cookie.empty()) p.text += "Cookie: " + std::string(cookie) + "\r\n";
  p.text += "\r\n";
  RequestParser parser;
  EXPECT_EQ(parser.Parse(p.text, &p.head), ParseStatus::kDone) << parser.error();
  return MailModeRedirect(mode, https, p.head, p.head.target, p.head.host, other_port);
}

constexpr std::string_view kToken = "a=1; ZM_AUTH_TOKEN=0_abc_def; b=2";

TEST(MailModeTest, BothNeverRedirects) {
  EXPECT_EQ(Ask(MailMode::kBoth, false, "/").status, 0);
  EXPECT_EQ(Ask(MailMode::kBoth, true, "/?zminitmode=http", kToken).status, 0);
}

TEST(MailModeTest, RedirectSendsEveryHttpRequestToHttps) {
  ModeRedirect r = Ask(MailMode::kRedirect, false, "/a/b?c=d", kToken);
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.location, "https://mail.example.com/a/b?c=d");
  r = Ask(MailMode::kRedirect, false, "/", "", "[2001:db8::1]:80", 8443);
  EXPECT_EQ(r.location, "https://[2001:db8::1]:8443/");
  EXPECT_EQ(Ask(MailMode::kRedirect, true, "/").status, 0);
}

TEST(MailModeTest, MixedSendsUnauthenticatedLogoutAndChangepassToHttps) {
  ModeRedirect r = Ask(MailMode::kMixed, false, "/");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.location, "https://mail.example.com/?zminitmode=http");
  r = Ask(MailMode::kMixed, false, "/?loginOp=logout", kToken);
  EXPECT_EQ(r.location, "https://mail.example.com/?loginOp=logout&zminitmode=http");
  r = Ask(MailMode::kMixed, false, "/h/changepass", kToken, "mail.example.com", 8443);
  EXPECT_EQ(r.location, "https://mail.example.com:8443/h/changepass?zminitmode=http");
  // Authenticated: proxied over HTTP.
  EXPECT_EQ(Ask(MailMode::kMixed, false, "/h/search?q=1", kToken).status, 0);
  // An empty token is no token.
  EXPECT_EQ(Ask(MailMode::kMixed, false, "/h/", "ZM_AUTH_TOKEN=").status, 302);
}

TEST(MailModeTest, MixedSendsAuthenticatedInitModeBackToHttpWithoutIt) {
  ModeRedirect r =
      Ask(MailMode::kMixed, true, "/h/?a=1&zminitmode=http&b=2", kToken, "mail.example.com", 80);
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.location, "http://mail.example.com/h/?a=1&b=2");
  r = Ask(MailMode::kMixed, true, "/?ZMINITMODE=HTTP", kToken, "mail.example.com:443", 8080);
  EXPECT_EQ(r.location, "http://mail.example.com:8080/");
  EXPECT_EQ(Ask(MailMode::kMixed, true, "/?zminitmode=http").status, 0);  // not logged in
  EXPECT_EQ(Ask(MailMode::kMixed, true, "/h/", kToken).status, 0);
}

TEST(MailModeTest, NoRequestBouncesBetweenTheListeners) {
  for (std::string_view target : {"/", "/?loginOp=logout", "/h/changepass", "/x?zminitmode=http"}) {
    for (std::string_view cookie : {std::string_view(), kToken}) {
      const ModeRedirect first = Ask(MailMode::kMixed, false, target, cookie);
      if (first.status == 0) continue;
      const std::string next = first.location.substr(first.location.find('/', 8));
      const ModeRedirect second = Ask(MailMode::kMixed, true, next, cookie);
      EXPECT_EQ(second.status, 0) << target << " with '" << cookie << "' -> " << next;
    }
  }
}

}  // namespace
}  // namespace ringproxy::http
