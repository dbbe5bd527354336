// The lookup protocol codec: the exact request bytes, escaping, and responses and
// requests parsed whole and split at every 1, 2, 5, 10, 100 bytes.
#include "route/lookup_codec.h"

#include <deque>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ringproxy::lookup {
namespace {

TEST(LookupCodecTest, RequestBytesAreExactlyZimbras) {
  Request r;
  r.method = "username";
  r.user = "john doe%x";
  r.protocol = "imapssl";
  r.login_attempt = 1;
  r.proxy_ip = "192.0.2.10";
  r.client_ip = "198.51.100.7";
  std::string out;
  ASSERT_EQ(WriteRequest(r, "10.0.0.5", kDefaultPath, /*keep_alive=*/false, &out),
            RequestError::kNone);
  EXPECT_EQ(out,
            "GET /service/extension/nginx-lookup HTTP/1.0\r\n"
            "Host: 10.0.0.5\r\n"
            "Connection: close\r\n"
            "Auth-Method: username\r\n"
            "Auth-User: john%20doe%25x\r\n"
            "Auth-Pass: _password_\r\n"
            "Auth-Protocol: imapssl\r\n"
            "Auth-Login-Attempt: 1\r\n"
            "X-Proxy-IP: 192.0.2.10\r\n"
            "Client-IP: 198.51.100.7\r\n"
            "\r\n");
}

// A request with every optional header, for the gssapi and header-injection tests.
Request FullRequest() {
  Request r;
  r.method = "gssapi";
  r.user = "john";
  r.escape_user = false;
  r.protocol = "imap";
  r.client_ip = "198.51.100.7";
  r.proxy_ip = "192.0.2.10";
  r.proxy_host = "mail.example.com";
  r.auth_id = "john@EXAMPLE.COM";
  r.admin_user = "zmnginx";
  r.admin_pass = "secret";
  return r;
}

TEST(LookupCodecTest, WebAndGssapiHeaders) {
  Request r;
  r.method = "zimbraId";
  r.user = "6d1a-uuid";
  r.escape_user = false;
  r.protocol = "httpssl";
  r.login_attempt = 0;
  r.proxy_ip = "192.0.2.10";
  r.client_ip = "198.51.100.7";
  r.proxy_host = "mail.example.com";
  r.zimbra_admin = true;
  std::string out;
  ASSERT_EQ(WriteRequest(r, "10.0.0.5", kDefaultPath, true, &out), RequestError::kNone);
  EXPECT_NE(out.find("GET /service/extension/nginx-lookup HTTP/1.1\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Connection: close"), std::string::npos);
  EXPECT_NE(out.find("Auth-Zimbra-Admin: True\r\n"), std::string::npos);
  EXPECT_NE(out.find("X-Proxy-Host: mail.example.com\r\n"), std::string::npos);
  const Request g = FullRequest();
  out.clear();
  ASSERT_EQ(WriteRequest(g, "h", kDefaultPath, true, &out), RequestError::kNone);
  EXPECT_NE(out.find("Auth-ID: john@EXAMPLE.COM\r\n"), std::string::npos);
  EXPECT_NE(out.find("Auth-Admin-User: zmnginx\r\nAuth-Admin-Pass: secret\r\n"), std::string::npos);
}

struct Field {
  std::string_view header;
  std::string_view Request::*member;
  RequestError error;
};
constexpr Field kFields[] = {
    {"Auth-Method", &Request::method, RequestError::kBadMethod},
    {"Auth-User", &Request::user, RequestError::kBadUser},
    {"Auth-Protocol", &Request::protocol, RequestError::kBadProtocol},
    {"Client-IP", &Request::client_ip, RequestError::kBadClientIp},
    {"X-Proxy-IP", &Request::proxy_ip, RequestError::kBadProxyIp},
    {"X-Proxy-Host", &Request::proxy_host, RequestError::kBadProxyHost},
    {"Auth-ID", &Request::auth_id, RequestError::kBadAuthId},
    {"Auth-Admin-User", &Request::admin_user, RequestError::kBadAdminUser},
    {"Auth-Admin-Pass", &Request::admin_pass, RequestError::kBadAdminPass},
};

// CR or LF would end the header and start one of the client's choosing; NUL and the
// other controls are no header text either. Every value is checked, nothing is written.
TEST(LookupCodecTest, AControlCharacterInAnyValueIsRefusedAndNothingWritten) {
  std::string ok;
  ASSERT_EQ(WriteRequest(FullRequest(), "10.0.0.5", kDefaultPath, true, &ok), RequestError::kNone);
  for (const std::string& bad : {std::string("x\r\nX-Evil: 1"), std::string("x\r"),
                                 std::string("\nx"), std::string("a\0b", 3), std::string("a\x01"),
                                 std::string("\x1f"), std::string("a\tb"), std::string("a\x7f")}) {
    for (const Field& f : kFields) {
      SCOPED_TRACE(std::string(f.header) + " = " + EscapeMailAuth(bad));
      Request r = FullRequest();
      r.*f.member = bad;
      std::string out = "kept";
      EXPECT_EQ(WriteRequest(r, "10.0.0.5", kDefaultPath, true, &out), f.error);
      EXPECT_EQ(out, "kept");
      EXPECT_EQ(RefusedValue(r, "10.0.0.5", kDefaultPath, f.error), bad);
      EXPECT_NE(RequestErrorName(f.error).find(f.header), std::string_view::npos);
    }
    SCOPED_TRACE("host and path = " + EscapeMailAuth(bad));
    std::string out;
    EXPECT_EQ(WriteRequest(FullRequest(), bad, kDefaultPath, true, &out), RequestError::kBadHost);
    EXPECT_EQ(out, "");
    EXPECT_EQ(WriteRequest(FullRequest(), "10.0.0.5", "/x" + bad, false, &out),
              RequestError::kBadPath);
    EXPECT_EQ(out, "");
  }
}

// The negative space: the first and last bytes either side of the control ranges pass,
// and a mail login (escaped on the wire) may hold anything.
TEST(LookupCodecTest, ValuesWithoutControlCharactersAreWrittenAsGiven) {
  Request r = FullRequest();
  const std::string edge = " ~\x80\xff";
  r.user = edge;
  r.auth_id = edge;
  std::string out;
  ASSERT_EQ(WriteRequest(r, "10.0.0.5", kDefaultPath, true, &out), RequestError::kNone);
  EXPECT_NE(out.find("Auth-User:  ~\x80\xff\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Auth-ID:  ~\x80\xff\r\n"), std::string::npos) << out;
  Request mail = FullRequest();
  mail.method = "username";
  mail.user = "x\r\nX-Evil: 1";
  mail.escape_user = true;
  out.clear();
  ASSERT_EQ(WriteRequest(mail, "10.0.0.5", kDefaultPath, true, &out), RequestError::kNone);
  EXPECT_NE(out.find("Auth-User: x%0D%0AX-Evil:%201\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("X-Evil: 1"), std::string::npos) << out;
}

TEST(LookupCodecTest, EscapeRoundTrip) {
  for (std::string s : {std::string("plain@example.com"), std::string("a b%c"),
                        std::string("ctl\x01\x7f"
                                    "end",
                                    8)}) {
    std::string back;
    ASSERT_TRUE(UnescapeMailAuth(EscapeMailAuth(s), &back));
    EXPECT_EQ(back, s);
  }
  std::string out;
  EXPECT_FALSE(UnescapeMailAuth("bad%", &out));
  EXPECT_FALSE(UnescapeMailAuth("bad%2", &out));
  EXPECT_FALSE(UnescapeMailAuth("bad%zz", &out));
}

// Feeds `input` `step` bytes at a time until the parser has a whole message; returns
// the bytes fed (the caller parses them again: the views point into that buffer).
template <typename Parse>
std::string FeedUntilWhole(std::string_view input, size_t step, Parse parse) {
  std::string buf;
  size_t fed = 0;
  for (;;) {
    if (parse(buf).error != Error::kNeedMore || fed == input.size()) return buf;
    size_t n = std::min(step, input.size() - fed);
    buf.append(input.substr(fed, n));
    fed += n;
  }
}

TEST(LookupCodecTest, SuccessResponse) {
  const std::string r =
      "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.21\r\nAuth-Port: 7993\r\n"
      "Auth-Cache-Alias: TRUE\r\nAuth-User: john%20x@example.com\r\nContent-Length: 0\r\n\r\n";
  for (size_t step : {size_t{1}, size_t{2}, size_t{5}, size_t{10}, size_t{100}, r.size()}) {
    SCOPED_TRACE(step);
    std::string buf = FeedUntilWhole(r, step, [](std::string_view d) { return ParseResponse(d); });
    ParsedResponse p = ParseResponse(buf);
    ASSERT_EQ(p.error, Error::kNone);
    EXPECT_EQ(p.consumed, r.size());
    EXPECT_TRUE(p.keep_alive);
    Answer a = Interpret(p);
    EXPECT_EQ(a.outcome, Outcome::kOk);
    EXPECT_EQ(a.server, "10.0.0.21");
    EXPECT_EQ(a.port, 7993);
    EXPECT_TRUE(a.cache_alias);
    std::string user;
    ASSERT_TRUE(UnescapeMailAuth(a.user, &user));
    EXPECT_EQ(user, "john x@example.com");
  }
}

TEST(LookupCodecTest, FailureAndInvalidRoute) {
  std::deque<std::string> texts;  // an Answer's views point into its text
  auto answer = [&texts](std::string s) {
    return Interpret(ParseResponse(texts.emplace_back(std::move(s))));
  };
  Answer f = answer("HTTP/1.1 200 OK\r\nAuth-Status: user not found:x@y\r\nAuth-Wait: 10\r\n\r\n");
  EXPECT_EQ(f.outcome, Outcome::kLoginFailed);
  EXPECT_EQ(f.status, "user not found:x@y");
  EXPECT_EQ(f.wait_s, 10);
  // An hour at most, however long the service asks for.
  EXPECT_EQ(answer("HTTP/1.1 200 OK\r\nAuth-Status: no\r\nAuth-Wait: 100000\r\n\r\n").wait_s, 3600);
  EXPECT_EQ(
      answer("HTTP/1.1 200 OK\r\nAuth-Status: no\r\nAuth-Wait: 99999999999999\r\n\r\n").wait_s,
      3600);
  EXPECT_EQ(answer("HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Port: 7143\r\n\r\n").outcome,
            Outcome::kInvalidRoute);
  EXPECT_EQ(
      answer("HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: h\r\nAuth-Port: 99999\r\n\r\n")
          .outcome,
      Outcome::kInvalidRoute);
  EXPECT_EQ(answer("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n").outcome, Outcome::kInvalid);
  // Auth-Server must be an IP or a host name: anything else would be cached (memcached is
  // shared with Zimbra's proxies) and fail every login until its TTL.
  auto with_server = [&](std::string server) {
    return answer("HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: " + server +
                  "\r\nAuth-Port: 7143\r\n\r\n");
  };
  for (const char* bad : {"10.0.0.5:7143", "mail host", "mail..example.com", ".mail", "mail/1",
                          "[10.0.0.5]", "[::1", "::1]", "a\x01b", "-", "x,y"}) {
    EXPECT_EQ(with_server(bad).outcome, Outcome::kInvalidRoute) << bad;
  }
  EXPECT_EQ(with_server(std::string(254, 'a')).outcome, Outcome::kInvalidRoute);
  EXPECT_EQ(with_server(std::string(64, 'a') + ".test").outcome, Outcome::kInvalidRoute);
  for (const char* good : {"10.0.0.5", "mail-1.example.com", "mailbox_2.internal", "::1",
                           "2001:db8::5", "MAIL.Example.COM.", "localhost"}) {
    Answer a = with_server(good);
    EXPECT_EQ(a.outcome, Outcome::kOk) << good;
    EXPECT_EQ(a.server, good);
  }
  Answer bracketed = with_server("[2001:db8::5]");
  EXPECT_EQ(bracketed.outcome, Outcome::kOk);
  EXPECT_EQ(bracketed.server, "2001:db8::5");
  // No Content-Length: the body runs to the close, so the connection is not reusable.
  EXPECT_FALSE(ParseResponse("HTTP/1.1 200 OK\r\nAuth-Status: OK\r\n\r\n").keep_alive);
  EXPECT_FALSE(ParseResponse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
}

TEST(LookupCodecTest, MalformedResponses) {
  EXPECT_EQ(ParseResponse("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n").error,
            Error::kBadStatus);
  EXPECT_EQ(ParseResponse("SMTP 220 hi\r\n\r\n").error, Error::kBadStartLine);
  EXPECT_EQ(ParseResponse("HTTP/1.1 200 OK\r\nnocolon\r\n\r\n").error, Error::kBadHeader);
  EXPECT_EQ(ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").error, Error::kBadHeader);
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 40; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(ParseResponse(many + "\r\n").error, Error::kTooManyHeaders);
  EXPECT_EQ(ParseResponse("HTTP/1.1 200 OK\r\nX: " + std::string(9000, 'a')).error,
            Error::kHeadTooLong);
  EXPECT_EQ(ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").error,
            Error::kNeedMore);
}

// A body whose end is not known from one Content-Length: never a kept connection, whose
// next answer would start with this one's leftover bytes.
TEST(LookupCodecTest, AResponseWithoutOneLengthIsNotKept) {
  const std::string head = "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nContent-Length: 0\r\n";
  ParsedResponse chunked = ParseResponse(head + "Transfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(chunked.error, Error::kNone);
  EXPECT_FALSE(chunked.keep_alive);
  EXPECT_EQ(ParseResponse(head + "Content-Length: 5\r\n\r\n").error, Error::kBadHeader);
  ParsedResponse same = ParseResponse(head + "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(same.error, Error::kNone);
  EXPECT_TRUE(same.keep_alive);
}

// Any Auth-Status other than OK fails the login wherever it stands; other repeated
// fields count by their last value, as in Zimbra's proxy.
TEST(LookupCodecTest, RepeatedFields) {
  std::deque<std::string> texts;  // an Answer's views point into its text
  auto answer = [&texts](std::string s) {
    return Interpret(ParseResponse(texts.emplace_back(std::move(s))));
  };
  Answer late_refusal = answer(
      "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.7\r\nAuth-Port: 7143\r\n"
      "Auth-Status: user not found:x@y\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(late_refusal.outcome, Outcome::kLoginFailed);
  EXPECT_EQ(late_refusal.status, "user not found:x@y");
  Answer twice = answer(
      "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.7\r\nAuth-Port: 7143\r\n"
      "Auth-Server: 10.0.0.8\r\nAuth-Port: 7993\r\nAuth-Status: OK\r\n\r\n");
  EXPECT_EQ(twice.outcome, Outcome::kOk);
  EXPECT_EQ(twice.server, "10.0.0.8");
  EXPECT_EQ(twice.port, 7993);
}

TEST(LookupCodecTest, RequestParsing) {
  std::string wire;
  Request r;
  r.user = "jd";
  r.protocol = "pop3";
  r.client_ip = "1.2.3.4";
  r.proxy_ip = "127.0.0.1";
  ASSERT_EQ(WriteRequest(r, "h", kDefaultPath, true, &wire), RequestError::kNone);
  for (size_t step : {size_t{1}, size_t{7}, wire.size()}) {
    std::string buf =
        FeedUntilWhole(wire, step, [](std::string_view d) { return ParseRequest(d); });
    ParsedRequest p = ParseRequest(buf);
    ASSERT_EQ(p.error, Error::kNone);
    EXPECT_EQ(p.method, "GET");
    EXPECT_EQ(p.target, kDefaultPath);
    EXPECT_EQ(p.Find("auth-user"), "jd");
    EXPECT_EQ(p.Find("Auth-Protocol"), "pop3");
    EXPECT_TRUE(p.keep_alive);
  }
  EXPECT_EQ(ParseRequest("GET / SPDY/3\r\n\r\n").error, Error::kBadStartLine);
}

TEST(LookupCodecTest, ReplyRoundTrip) {
  Reply ok;
  ok.ok = true;
  ok.server = "10.0.0.1";
  ok.port = 7110;
  ok.user = "a b@c";
  ok.cache_alias = true;
  std::string wire;
  WriteReply(ok, true, &wire);
  Answer a = Interpret(ParseResponse(wire));
  EXPECT_EQ(a.outcome, Outcome::kOk);
  EXPECT_EQ(a.port, 7110);
  EXPECT_EQ(a.user, "a%20b@c");
  Reply no;
  no.status = "user not found:z";
  no.wait_s = 3;
  wire.clear();
  WriteReply(no, false, &wire);
  ParsedResponse p = ParseResponse(wire);
  EXPECT_FALSE(p.keep_alive);
  Answer b = Interpret(p);
  EXPECT_EQ(b.outcome, Outcome::kLoginFailed);
  EXPECT_EQ(b.wait_s, 3);
}

// A value with a control byte (a reason quoting a login) cannot end its header line
// and start another: the byte is written as %XX.
TEST(LookupCodecTest, ReplyValuesNeverHoldAControlByte) {
  Reply no;
  no.status = "user not found:x@y\r\nauth-wait: 0";
  no.wait_s = 3;
  std::string wire;
  WriteReply(no, false, &wire);
  EXPECT_EQ(wire,
            "HTTP/1.1 200 OK\r\nAuth-Status: user not found:x@y%0D%0Aauth-wait: 0\r\n"
            "Auth-Wait: 3\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  Reply ok;
  ok.ok = true;
  ok.server = "h\nX: 1";
  ok.port = 7143;
  ok.user = "u\r";
  ok.auth_id = std::string_view("i\0d", 3);
  ok.auth_pass = "p\x7f\t";
  wire.clear();
  WriteReply(ok, true, &wire);
  EXPECT_EQ(wire,
            "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: h%0AX: 1\r\nAuth-Port: 7143\r\n"
            "Auth-Cache-Alias: FALSE\r\nAuth-User: u%0D\r\nAuth-ID: i%00d\r\n"
            "Auth-Pass: p%7F%09\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
}

}  // namespace
}  // namespace ringproxy::lookup
