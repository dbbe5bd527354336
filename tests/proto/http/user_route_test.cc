// Whose mailbox a web request is for (proto/http/user_route.h): each source of the
// spec's order, which one wins when several are present, and what does not count.
#include "proto/http/user_route.h"

#include <string>

#include "gtest/gtest.h"
#include "proto/sasl/sasl.h"

namespace ringproxy::http {
namespace {

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Token(std::string_view id) {
  const std::string fields = "id=" + std::to_string(id.size()) + ":" + std::string(id) +
                             ";exp=13:1700000000000;type=6:zimbra;";
  return "0_8a9b0c1d2e3f_" + Hex(fields);
}

std::string Base64Url(std::string_view s) {
  std::string out;
  sasl::Base64Encode(s, &out);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string Jwt(std::string_view payload) {
  return Base64Url(R"({"alg":"HS256","typ":"JWT"})") + "." + Base64Url(payload) + ".c2ln";
}

struct Parsed {
  std::string text;
  RequestHead head;
};

// Parses a GET of `target` with extra field lines; the head's views point into `p`.
void Parse(Parsed* p, std::string_view target, std::string_view fields = "") {
  p->text = "GET " + std::string(target) + " HTTP/1.1\r\nHost: mail.example.com\r\n" +
            std::string(fields) + "\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.Parse(p->text, &p->head), ParseStatus::kDone) << parser.error();
}

UserRoute Route(std::string_view target, std::string_view fields = "", bool admin = false) {
  Parsed p;
  Parse(&p, target, fields);
  return FindUserRoute(p.head, p.head.target, admin);
}

TEST(UserRouteTest, RestPaths) {
  for (const char* target :
       {"/home/john@example.com/inbox.rss", "/home/~john@example.com/",
        "/service/home/john%40example.com/Calendar", "/service/home/~john@example.com?fmt=ics",
        "/home/john@example.com", "/home/%7Ejohn@example.com/",
        "/service/home/%7ejohn%40example.com/"}) {
    const UserRoute r = Route(target);
    EXPECT_EQ(r.by, RouteBy::kUsername) << target;
    EXPECT_EQ(r.source, UserSource::kRestPath) << target;
    EXPECT_EQ(r.user, "john@example.com") << target;
  }
  // "~" alone is the token's user: no path route.
  EXPECT_EQ(Route("/home/~/inbox").by, RouteBy::kNone);
  EXPECT_EQ(Route("/home/%7E/inbox").by, RouteBy::kNone);
  EXPECT_EQ(
      Route("/service/home/~/inbox", "Cookie: ZM_AUTH_TOKEN=" + Token("id-1") + "\r\n").source,
      UserSource::kAuthTokenCookie);
  // A bad escape or a control is not a user.
  EXPECT_EQ(Route("/home/jo%zzhn/").by, RouteBy::kNone);
  EXPECT_EQ(Route("/home/jo%0ahn/").by, RouteBy::kNone);
  EXPECT_EQ(Route("/homeward/john/").by, RouteBy::kNone);
}

TEST(UserRouteTest, ActiveSyncAndEwsBasicUser) {
  std::string b64;
  sasl::Base64Encode("EXAMPLE.COM\\john:secret:with:colons", &b64);
  UserRoute r = Route("/Microsoft-Server-ActiveSync?Cmd=Sync&User=other",
                      "Authorization: Basic " + b64 + "\r\n");
  EXPECT_EQ(r.source, UserSource::kActiveSync);
  EXPECT_EQ(r.user, "john@EXAMPLE.COM");
  b64.clear();
  sasl::Base64Encode("jane@example.com:pw", &b64);
  r = Route("/EWS/Exchange.asmx", "Authorization: basic " + b64 + "\r\n");
  EXPECT_EQ(r.source, UserSource::kEws);
  EXPECT_EQ(r.user, "jane@example.com");
  // No Basic credentials: the User= argument.
  r = Route("/Microsoft-Server-ActiveSync?Cmd=Ping&User=bob%40example.com&DeviceId=1");
  EXPECT_EQ(r.source, UserSource::kActiveSync);
  EXPECT_EQ(r.user, "bob@example.com");
  // Not base64, or DOMAIN\ with no user: the argument, else nothing.
  EXPECT_EQ(Route("/Microsoft-Server-ActiveSync", "Authorization: Basic !!!\r\n").by,
            RouteBy::kNone);
  b64.clear();
  sasl::Base64Encode("EXAMPLE\\:pw", &b64);
  EXPECT_EQ(Route("/Microsoft-Server-ActiveSync", "Authorization: Basic " + b64 + "\r\n").by,
            RouteBy::kNone);
  // As Zimbra's proxy: EWS by prefix in any case, ActiveSync in its own case only.
  b64.clear();
  sasl::Base64Encode("bob@example.com:pw", &b64);
  r = Route("/ews/exchange.asmx/wssecurity", "Authorization: Basic " + b64 + "\r\n");
  EXPECT_EQ(r.source, UserSource::kEws);
  EXPECT_EQ(r.user, "bob@example.com");
  EXPECT_EQ(Route("/microsoft-server-activesync?User=bob%40example.com").by, RouteBy::kNone);
  // Only the first Authorization field counts: the one the mailbox server reads.
  r = Route("/Microsoft-Server-ActiveSync?Cmd=Sync",
            "Authorization: Bearer x.y.z\r\nAuthorization: Basic " + b64 + "\r\n");
  EXPECT_EQ(r.by, RouteBy::kNone);
}

TEST(UserRouteTest, CalDavPaths) {
  UserRoute r = Route("/dav/john@example.com/Calendar/");
  EXPECT_EQ(r.source, UserSource::kCalDav);
  EXPECT_EQ(r.user, "john@example.com");
  r = Route("/principals/users/jane%40example.com/");
  EXPECT_EQ(r.source, UserSource::kCalDav);
  EXPECT_EQ(r.user, "jane@example.com");
}

TEST(UserRouteTest, AuthTokensAndJwt) {
  const std::string id = "d6e0a6c4-1234-4c6e-9b8b-123456789abc";
  UserRoute r = Route("/service/soap", "Cookie: a=b; ZM_AUTH_TOKEN=" + Token(id) + "; c=d\r\n");
  EXPECT_EQ(r.by, RouteBy::kZimbraId);
  EXPECT_EQ(r.source, UserSource::kAuthTokenCookie);
  EXPECT_EQ(r.user, id);
  r = Route("/service/soap?zauthtoken=" + Token("id-2"));
  EXPECT_EQ(r.source, UserSource::kAuthTokenArgument);
  EXPECT_EQ(r.user, "id-2");
  // The cookie wins over the argument; a token without an id counts as none.
  r = Route("/x?zauthtoken=" + Token("arg"), "Cookie: ZM_AUTH_TOKEN=" + Token("cookie") + "\r\n");
  EXPECT_EQ(r.user, "cookie");
  r = Route("/x?zauthtoken=" + Token("arg"),
            "Cookie: ZM_AUTH_TOKEN=0_1_" + Hex("exp=1:1;") + "\r\n");
  EXPECT_EQ(r.user, "arg");
  const std::string jwt =
      Jwt(R"({"iss":"zimbra","n":{"a":[1,"}",{"sub":"inner"}]},"sub":"acc-7"})");
  r = Route("/service/soap", "Authorization: Bearer " + jwt + "\r\n");
  EXPECT_EQ(r.source, UserSource::kJwt);
  EXPECT_EQ(r.user, "acc-7");
  r = Route("/service/soap?zjwt=" + jwt);
  EXPECT_EQ(r.user, "acc-7");
  EXPECT_EQ(Route("/service/soap", "Authorization: Bearer " + Jwt(R"({"sub":7})") + "\r\n").by,
            RouteBy::kNone);
  // A REST path comes before any token.
  r = Route("/home/john@example.com/", "Cookie: ZM_AUTH_TOKEN=" + Token(id) + "\r\n");
  EXPECT_EQ(r.source, UserSource::kRestPath);
  // The admin console routes by its own cookie only.
  r = Route("/service/admin/soap", "Cookie: ZM_AUTH_TOKEN=" + Token("user") + "\r\n", true);
  EXPECT_EQ(r.by, RouteBy::kNone);
  r = Route("/service/admin/soap", "Cookie: ZM_ADMIN_AUTH_TOKEN=" + Token("admin-1") + "\r\n",
            true);
  EXPECT_EQ(r.source, UserSource::kAdminTokenCookie);
  EXPECT_EQ(r.user, "admin-1");
}

TEST(UserRouteTest, MalformedTokens) {
  EXPECT_EQ(AuthTokenId(""), "");
  EXPECT_EQ(AuthTokenId("0_abc"), "");
  EXPECT_EQ(AuthTokenId("0_abc_6"), "");                    // odd hex
  EXPECT_EQ(AuthTokenId("0_abc_zz"), "");                   // not hex
  EXPECT_EQ(AuthTokenId("0_a_" + Hex("id=9:short;")), "");  // length past the end
  EXPECT_EQ(AuthTokenId("0_a_" + Hex("id=2:abX")), "");     // no ';' after the value
  EXPECT_EQ(AuthTokenId("0_a_" + Hex("id=2:ab")), "ab");
  EXPECT_EQ(AuthTokenId("0_a_" + Hex("id=3:a\rb;")), "");  // a control byte
  EXPECT_EQ(JwtSubject("only.two"), "");
  EXPECT_EQ(JwtSubject("a.!!!.c"), "");
  EXPECT_EQ(JwtSubject(Jwt("not json")), "");
  EXPECT_EQ(JwtSubject(Jwt(R"({"sub":"a\u0001b"})")), "");
  EXPECT_EQ(JwtSubject(Jwt(R"({"sub":"a\/b"})")), "a/b");
}

TEST(UserRouteTest, EncodedCrLf) {
  EXPECT_TRUE(HasEncodedCrLf("/a%0d%0aSet-Cookie:x"));
  EXPECT_TRUE(HasEncodedCrLf("/a?b=%0A"));
  EXPECT_TRUE(HasEncodedCrLf("/%0D"));
  EXPECT_FALSE(HasEncodedCrLf("/a%20b%0"));
  EXPECT_FALSE(HasEncodedCrLf("/a%0Bb"));
}

TEST(UserRouteTest, TokensAreRedactedForTheLog) {
  std::string out;
  ASSERT_TRUE(WithoutTokens("/service/soap?a=1&zauthtoken=0_abc_def&ZJWT=eyJ.x.y&b", &out));
  EXPECT_EQ(out, "/service/soap?a=1&zauthtoken=redacted&ZJWT=redacted&b");
  EXPECT_FALSE(WithoutTokens("/service/soap?zauthtokens=1&a=zjwt=2", &out));
  EXPECT_FALSE(WithoutTokens("/home/alice/zauthtoken=x", &out));
  ASSERT_TRUE(WithoutTokens("https://h/x.html?zauth%74oken=T&z%4Awt=J", &out));
  EXPECT_EQ(out, "https://h/x.html?zauth%74oken=redacted&z%4Awt=redacted");
}

}  // namespace
}  // namespace ringproxy::http
