// The heads a proxy sends on (proto/http/forward.h): hop-by-hop fields dropped, the
// framing written from what is sent, the identity fields for trusted and untrusted
// peers, tunnels, and what the next hop parses back.
#include "proto/http/forward.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace ringproxy::http {
namespace {

RequestHead ParseRequest(std::string_view text) {  // views into `text`
  RequestParser p;
  RequestHead h;
  EXPECT_EQ(p.Parse(text, &h), ParseStatus::kDone) << p.error() << "\n" << text;
  return h;
}

TEST(ForwardTest, RequestDropsHopByHopAndWritesItsOwnFramingAndIdentity) {
  const std::string text =
      "POST /a?b HTTP/1.1\r\nHost: mail.example.com\r\nConnection: close, X-Secret\r\n"
      "X-Secret: 1\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
      "Trailer: X-T\r\nUpgrade: h2c\r\nAccept: */*\r\nX-Forwarded-For: 6.6.6.6\r\n"
      "X-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
      "X-Request-ID: spoofed\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
      "Cookie: a=b\r\n\r\n";
  const RequestHead in = ParseRequest(text);
  ForwardRequest f;
  f.target = "/rewritten?b";
  f.host = "mbox1.internal:8080";
  f.body = BodyKind::kLength;
  f.content_length = 42;
  f.client_ip = "198.51.100.7";
  f.scheme = "https";
  f.request_id = "r-1";
  std::string out;
  WriteRequestHead(in, f, &out);
  EXPECT_EQ(out,
            "POST /rewritten?b HTTP/1.1\r\nHost: mbox1.internal:8080\r\nAccept: */*\r\n"
            "Cookie: a=b\r\nContent-Length: 42\r\nX-Forwarded-For: 198.51.100.7\r\n"
            "X-Real-IP: 198.51.100.7\r\nForwarded: for=198.51.100.7;proto=https\r\n"
            "X-Forwarded-Proto: https\r\nX-Request-ID: r-1\r\n\r\n");
}

TEST(ForwardTest, AnEmptyHostIsWrittenEmpty) {
  // An HTTP/1.0 request may come without Host: the view is empty and its data() null,
  // which memcpy may not be given (UBSan fails this test in the ASan build).
  const std::string text = "GET / HTTP/1.0\r\n\r\n";
  const RequestHead in = ParseRequest(text);
  ForwardRequest f;
  f.target = "/";
  f.host = std::string_view();
  f.client_ip = "198.51.100.7";
  std::string out;
  WriteRequestHead(in, f, &out);
  EXPECT_TRUE(out.starts_with("GET / HTTP/1.1\r\nHost: \r\nX-Forwarded-For: 198.51.100.7\r\n"))
      << out;
}

TEST(ForwardTest, EveryFieldAConnectionFieldNamesIsDropped) {
  // Options over two Connection fields, more of them than the proxy gathers at once:
  // the first and the last named are dropped as surely as the others, each way.
  std::string names;
  std::string named_fields;
  for (int i = 1; i <= 12; ++i) {
    names += (i == 1   ? ""
              : i == 7 ? "\r\nConnection: "
                       : ", ") +
             std::string("X-Opt-") + std::to_string(i);
    named_fields += "x-opt-" + std::to_string(i) + ": v\r\n";
  }
  const std::string text = "GET / HTTP/1.1\r\nHost: h\r\nConnection: " + names + "\r\n" +
                           named_fields + "X-Kept: k\r\n\r\n";
  const RequestHead in = ParseRequest(text);
  ForwardRequest f;
  f.target = "/";
  f.host = "h";
  f.client_ip = "198.51.100.7";
  f.scheme = "http";
  std::string out;
  WriteRequestHead(in, f, &out);
  EXPECT_EQ(out.find("x-opt-"), std::string::npos) << out;
  EXPECT_NE(out.find("X-Kept: k\r\n"), std::string::npos) << out;

  const std::string response_text =
      "HTTP/1.1 200 OK\r\nConnection: " + names + "\r\n" + named_fields + "X-Kept: k\r\n\r\n";
  ResponseParser rp;
  ResponseHead rh;
  ASSERT_EQ(rp.Parse(response_text, /*head_request=*/false, &rh), ParseStatus::kDone);
  ForwardResponse fr;
  std::string rout;
  WriteResponseHead(rh, fr, &rout);
  EXPECT_EQ(rout.find("x-opt-"), std::string::npos) << rout;
  EXPECT_NE(rout.find("X-Kept: k\r\n"), std::string::npos) << rout;
}

TEST(ForwardTest, TrustedPeerListsAreKeptAndExtended) {
  const RequestHead in = ParseRequest(
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n"
      "Forwarded: for=203.0.113.9\r\nX-Forwarded-For: 192.0.2.44\r\n\r\n");
  ForwardRequest f;
  f.target = "/";
  f.host = "a";
  f.client_ip = "2001:db8::1";
  f.trusted_peer = true;
  std::string out;
  WriteRequestHead(in, f, &out);
  EXPECT_NE(out.find("\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1, 192.0.2.44, 2001:db8::1\r\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\r\nX-Real-IP: 192.0.2.44\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nForwarded: for=203.0.113.9, for=\"[2001:db8::1]\";proto=http\r\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("X-Request-ID"), std::string::npos);
  // The same request from an untrusted peer: replaced, not extended.
  f.trusted_peer = false;
  out.clear();
  WriteRequestHead(in, f, &out);
  EXPECT_NE(out.find("\r\nX-Forwarded-For: 2001:db8::1\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("203.0.113.9"), std::string::npos) << out;
}

// X-Real-IP is the list's last address whatever the list's length (it once pointed into
// the list as it grew).
TEST(ForwardTest, RealIpIsTheLastListedAddressForEveryListLength) {
  std::string list = "192.0.2.1";
  for (int i = 0; i < 40; ++i) {
    const std::string text = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: " + list + "\r\n\r\n";
    const RequestHead in = ParseRequest(text);
    ForwardRequest f;
    f.target = "/";
    f.host = "a";
    f.client_ip = "10.0.0.1";
    f.trusted_peer = true;
    std::string out;
    WriteRequestHead(in, f, &out);
    list = "10.9.0." + std::to_string(i) + ", " + list;
    EXPECT_NE(out.find("\r\nX-Real-IP: 192.0.2.1\r\n"), std::string::npos) << out;
  }
}

TEST(ForwardTest, ATunnelKeepsUpgrade) {
  const RequestHead in = ParseRequest(
      "GET /zx/ws-1 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: k\r\n\r\n");
  ForwardRequest f;
  f.target = in.target;
  f.host = in.host;
  f.upgrade = true;
  f.client_ip = "127.0.0.1";
  std::string out;
  WriteRequestHead(in, f, &out);
  EXPECT_NE(out.find("\r\nUpgrade: websocket\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nConnection: upgrade\r\n"), std::string::npos) << out;
  f.upgrade = false;
  out.clear();
  WriteRequestHead(in, f, &out);
  EXPECT_EQ(out.find("Upgrade"), std::string::npos) << out;
  EXPECT_EQ(out.find("Connection"), std::string::npos) << out;
}

TEST(ForwardTest, TheNextHopReadsOneFraming) {
  // Whatever framing arrived, the next hop sees exactly the one the proxy sends.
  const RequestHead chunked =
      ParseRequest("PUT /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n");
  const RequestHead length =
      ParseRequest("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n");
  for (const RequestHead* in : {&chunked, &length}) {
    for (BodyKind body : {BodyKind::kNone, BodyKind::kLength, BodyKind::kChunked}) {
      ForwardRequest f;
      f.target = in->target;
      f.host = in->host;
      f.body = body;
      f.content_length = 9;
      f.client_ip = "192.0.2.1";
      std::string out;
      WriteRequestHead(*in, f, &out);
      const RequestHead again = ParseRequest(out);
      EXPECT_EQ(again.method, "PUT");
      EXPECT_EQ(again.target, "/f");
      EXPECT_EQ(again.semantics.body, body);
      if (body == BodyKind::kLength) {
        EXPECT_EQ(again.semantics.content_length, 9u);
      }
    }
  }
}

ResponseHead ParseResponse(std::string_view text, bool head_request = false) {
  ResponseParser p;
  ResponseHead h;
  EXPECT_EQ(p.Parse(text, head_request, &h), ParseStatus::kDone) << p.error();
  return h;
}

TEST(ForwardTest, ResponsesForEachClient) {
  const ResponseHead in = ParseResponse(
      "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
      "Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\nSet-Cookie: a=b\r\n\r\n");
  ForwardResponse f;
  f.body = BodyKind::kChunked;
  std::string out;
  WriteResponseHead(in, f, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=b\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
  f.body = BodyKind::kLength;
  f.content_length = 7;
  f.client_version_minor = 0;
  out.clear();
  WriteResponseHead(in, f, &out);
  EXPECT_NE(out.find("\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\n"), std::string::npos)
      << out;
  f.keep_alive = false;
  out.clear();
  WriteResponseHead(in, f, &out);
  EXPECT_NE(out.find("\r\nConnection: close\r\n\r\n"), std::string::npos) << out;
  // A HEAD's answer keeps the representation's length.
  const ResponseHead head = ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true);
  ForwardResponse none;
  out.clear();
  WriteResponseHead(head, none, &out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
  // A 101 becomes a tunnel.
  const ResponseHead switching = ParseResponse(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Accept: x\r\n\r\n");
  ForwardResponse tunnel;
  tunnel.upgrade = true;
  out.clear();
  WriteResponseHead(switching, tunnel, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\n"
            "Connection: upgrade\r\n\r\n");
}

TEST(ForwardTest, AResponseWithoutADateGetsTheProxysOnceAndADatedOneKeepsItsOwn) {
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FormatHttpDate(1796515200), "Sun, 06 Dec 2026 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(951827696), "Tue, 29 Feb 2000 12:34:56 GMT");
  ForwardResponse f;
  f.body = BodyKind::kLength;
  f.content_length = 2;
  f.date = "Sun, 06 Dec 2026 02:30:00 GMT";
  std::string out;
  WriteResponseHead(ParseResponse("HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n"), f, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nDate: Sun, 06 Dec 2026 02:30:00 GMT\r\n"
            "Content-Length: 2\r\n\r\n");
  out.clear();
  WriteResponseHead(ParseResponse("HTTP/1.1 200 OK\r\ndate: Sat, 05 Dec 2026 01:00:00 GMT\r\n\r\n"),
                    f, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\ndate: Sat, 05 Dec 2026 01:00:00 GMT\r\nContent-Length: 2\r\n\r\n");
  // A Date the upstream named in Connection is not passed on: the proxy's goes instead.
  out.clear();
  WriteResponseHead(
      ParseResponse(
          "HTTP/1.1 200 OK\r\nConnection: Date\r\nDate: Sat, 05 Dec 2026 01:00:00 GMT\r\n\r\n"),
      f, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 02:30:00 GMT\r\nContent-Length: 2\r\n\r\n");
  // A rule that sets or removes Date has the last word.
  for (const HeaderRules& rules :
       {HeaderRules{{"Date"}, {}}, HeaderRules{{}, {{"Date", "Thu, 01 Jan 2026 00:00:00 GMT"}}}}) {
    ForwardResponse ruled = f;
    ruled.rules = &rules;
    out.clear();
    WriteResponseHead(ParseResponse("HTTP/1.1 200 OK\r\n\r\n"), ruled, &out);
    const std::string expected_date =
        rules.set.empty() ? "" : "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n";
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\n" + expected_date + "Content-Length: 2\r\n\r\n");
  }
}

TEST(ForwardTest, ABodylessResponseWritesItsContentLengthOnceAndA204None) {
  std::string out;
  ForwardResponse none;
  // A HEAD's answer with a repeated length: one clean field.
  const ResponseHead head =
      ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 005\r\n\r\n", true);
  WriteResponseHead(head, none, &out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  // A 204 may not carry one (RFC 9110 §8.6): a client honouring it would read the next
  // response as this one's body.
  const ResponseHead no_content =
      ParseResponse("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\nX-A: 1\r\n\r\n");
  out.clear();
  WriteResponseHead(no_content, none, &out);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
  // An empty 200 keeps its framing.
  const ResponseHead empty = ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  out.clear();
  WriteResponseHead(empty, none, &out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST(ForwardTest, OnlyAWebSocketUpgradeOnHttp11IsTunnelled) {
  const char* extra = "Sec-WebSocket-Key: k\r\n\r\n";
  for (const auto& [request, tunnels] : std::vector<std::pair<std::string, bool>>{
           {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n", true},
           {"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: WebSocket \r\n", true},
           {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n",
            false},
           {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n",
            false},
           {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n", false},
           {"GET / HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n", false},
       }) {
    const std::string text = request + extra;
    const RequestHead in = ParseRequest(text);
    EXPECT_EQ(TunnelsUpgrade(in), tunnels) << text;
    ForwardRequest f;
    f.target = "/";
    f.host = "a";
    f.upgrade = TunnelsUpgrade(in);
    std::string out;
    WriteRequestHead(in, f, &out);
    // Refused: nothing of the upgrade reaches the upstream, HTTP2-Settings included.
    EXPECT_EQ(out.find("Upgrade: ") != std::string::npos, tunnels) << out;
    EXPECT_EQ(out.find("Connection: upgrade") != std::string::npos, tunnels) << out;
    EXPECT_EQ(out.find("HTTP2-Settings"), std::string::npos) << out;
  }
}

TEST(ForwardTest, AnInterimResponseKeepsItsFieldsAndGetsNoFramingOrRules) {
  HeaderRules rules;
  rules.remove = {"x-debug"};
  rules.set = {{"X-Frame-Options", "DENY"}};
  const ResponseHead hints = ParseResponse(
      "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: X-Hop\r\n"
      "X-Hop: 1\r\nX-Debug: 1\r\nContent-Length: 0\r\n\r\n");
  ForwardResponse f;
  f.interim = true;
  f.client_version_minor = 0;
  f.keep_alive = false;
  f.rules = &rules;
  std::string out;
  WriteResponseHead(hints, f, &out);
  EXPECT_EQ(out, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
}

TEST(ForwardTest, HeaderRulesRemoveAndSetFieldsEachWay) {
  HeaderRules rules;
  rules.remove = {"x-debug"};
  rules.set = {{"X-Frame-Options", "DENY"}, {"Via", "1.1 ringproxy"}};
  const std::string text =
      "GET / HTTP/1.1\r\nHost: a\r\nX-Debug: 1\r\nVIA: 1.0 spoofed\r\nAccept: */*\r\n"
      "x-DEBUG: 2\r\n\r\n";
  const RequestHead in = ParseRequest(text);
  ForwardRequest f;
  f.target = "/";
  f.host = "a";
  f.client_ip = "192.0.2.1";
  f.rules = &rules;
  std::string out;
  WriteRequestHead(in, f, &out);
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Frame-Options: DENY\r\n"
            "Via: 1.1 ringproxy\r\nX-Forwarded-For: 192.0.2.1\r\nX-Real-IP: 192.0.2.1\r\n"
            "Forwarded: for=192.0.2.1;proto=http\r\nX-Forwarded-Proto: http\r\n\r\n");

  const ResponseHead resp = ParseResponse(
      "HTTP/1.1 200 OK\r\nServer: origin\r\nX-Frame-Options: SAMEORIGIN\r\n"
      "Content-Length: 3\r\nX-Debug: on\r\n\r\n");
  ForwardResponse fr;
  fr.body = BodyKind::kLength;
  fr.content_length = 3;
  fr.rules = &rules;
  out.clear();
  WriteResponseHead(resp, fr, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nServer: origin\r\nX-Frame-Options: DENY\r\n"
            "Via: 1.1 ringproxy\r\nContent-Length: 3\r\n\r\n");
}

TEST(ForwardTest, TheProxyOwnsFramingHopByHopAndIdentityFields) {
  for (std::string_view name : {"Content-Length", "transfer-encoding", "Connection", "Upgrade",
                                "TE", "Keep-Alive", "Trailer", "Proxy-Connection"}) {
    EXPECT_TRUE(ProxyOwnsField(name, true)) << name;
    EXPECT_TRUE(ProxyOwnsField(name, false)) << name;
  }
  for (std::string_view name :
       {"Host", "X-Forwarded-For", "X-Real-IP", "Forwarded", "X-Request-ID", "Expect"}) {
    EXPECT_TRUE(ProxyOwnsField(name, true)) << name;
    EXPECT_FALSE(ProxyOwnsField(name, false)) << name;
  }
  EXPECT_FALSE(ProxyOwnsField("X-Frame-Options", true));
  EXPECT_TRUE(IsFieldName("X-Frame-Options"));
  EXPECT_FALSE(IsFieldName("X Frame"));
  EXPECT_FALSE(IsFieldName(""));
  EXPECT_TRUE(IsCleanFieldValue("max-age=63072000; includeSubDomains"));
  EXPECT_TRUE(IsCleanFieldValue(""));
  EXPECT_FALSE(IsCleanFieldValue(" lead"));
  EXPECT_FALSE(IsCleanFieldValue("a\r\nX-Injected: 1"));
}

// The count wraps after 2^32 ids: the prefix moves on, so no id comes again.
TEST(RequestIdsTest, IdsDoNotRepeatWhenTheCountWraps) {
  RequestIds fresh(0x0123456789abcdefULL);
  std::string first;
  fresh.Next(&first);
  EXPECT_EQ(first, "0123456789abcdef00000001");
  RequestIds ids(0x0123456789abcdefULL, 0xfffffffeU);
  std::vector<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    std::string id;
    ids.Next(&id);
    seen.push_back(id);
  }
  EXPECT_EQ(seen[0], "0123456789abcdefffffffff");
  EXPECT_NE(seen[1].substr(0, 16), "0123456789abcdef") << seen[1];
  EXPECT_EQ(seen[1].substr(16), "00000000");
  EXPECT_NE(seen[2], first) << "the first id came again";
}

}  // namespace
}  // namespace ringproxy::http
