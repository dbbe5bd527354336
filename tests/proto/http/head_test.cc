// HTTP/1.x heads and chunked bodies (proto/http/head.h): every head parsed whole and
// fed in every split (the fragment loop), the limits with the status each answers, a
// table of malformed and ambiguous requests with their statuses, bad responses, and
// the chunked decoder in every split.
#include "proto/http/head.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/proto/http/chunked_util.h"

namespace ringproxy::http {
namespace {

// Parses `text` fed as `buffer` grows by `step` bytes; every prefix before the end of
// the head must be kIncomplete (or the same error).
ParseStatus FeedRequest(std::string_view text, size_t step, RequestParser* parser,
                        RequestHead* head) {
  ParseStatus s = ParseStatus::kIncomplete;
  for (size_t n = std::min(step, text.size());; n = std::min(n + step, text.size())) {
    s = parser->Parse(text.substr(0, n), head);
    if (s != ParseStatus::kIncomplete || n == text.size()) return s;
  }
}

// The scanner's rules a byte at a time, as first written: the reference that the
// memchr-based HeadScanner must agree with.
struct BytewiseScan {
  int status = 0;  // 0: incomplete, -1: done, else the error status
  size_t end = 0;
  size_t leading = 0;
};
BytewiseScan ScanBytewise(std::string_view b, const Limits& limits, bool request) {
  size_t line_start = 0;
  size_t leading = 0;
  size_t lines = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i + 1 - leading * 2 > limits.head_bytes_max) return {431};
    if (b[i] != '\n') {
      if (i > line_start && b[i - 1] == '\r') return {400};
      if (i - line_start > limits.line_bytes_max) return {lines == 0 && request ? 414 : 431};
      continue;
    }
    if (i == line_start || b[i - 1] != '\r') return {400};
    const size_t line_bytes = i - 1 - line_start;
    line_start = i + 1;
    if (line_bytes == 0) {
      if (lines == 0) {
        if (!request || ++leading > 4) return {400};
        continue;
      }
      return {-1, i + 1, leading};
    }
    if (++lines > limits.fields_max + 1) return {431};
  }
  return {0};
}

TEST(HeadScannerTest, AgreesWithTheBytewiseRulesInEverySplit) {
  // Short random heads over the bytes that matter, with small limits, so that every
  // fault and every limit is met at every position; each fed in random splits.
  const Limits limits{.head_bytes_max = 40, .line_bytes_max = 9, .fields_max = 3};
  const char kAlphabet[] = {'a', 'a', 'a', ' ', ':', '\r', '\n', '\r', '\n'};
  uint32_t seed = 12345;
  auto next = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  int done = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const size_t len = next() % 48;
    for (size_t k = 0; k < len; ++k) {
      // Mostly well-formed line ends, so that heads also complete.
      if (next() % 5 == 0) {
        text += "\r\n";
      } else {
        text += kAlphabet[next() % sizeof(kAlphabet)];
      }
    }
    const bool request = next() % 2 == 0;
    const BytewiseScan want = ScanBytewise(text, limits, request);
    HeadScanner scanner(limits);
    ParseStatus got = ParseStatus::kIncomplete;
    for (size_t n = 0; got == ParseStatus::kIncomplete && n < text.size();) {
      n = std::min(text.size(), n + 1 + next() % 8);
      got = scanner.Scan(std::string_view(text).substr(0, n), request);
    }
    SCOPED_TRACE(::testing::PrintToString(text));
    if (want.status == 0) {
      EXPECT_EQ(got, ParseStatus::kIncomplete);
    } else if (want.status == -1) {
      ++done;
      ASSERT_EQ(got, ParseStatus::kDone);
      EXPECT_EQ(scanner.head_bytes(), want.end);
      EXPECT_EQ(scanner.leading_bytes(), want.leading);
    } else {
      ASSERT_EQ(got, ParseStatus::kError);
      EXPECT_EQ(scanner.error_status(), want.status);
    }
  }
  EXPECT_GT(done, 100);  // the heads that complete are covered too
}

TEST(RequestParserTest, EveryControlOctetInAFieldValueIsRefusedAtEveryPosition) {
  // Values are checked eight octets at a time: each octet at each position of a word
  // and of the tail.
  for (int octet = 0; octet < 256; ++octet) {
    for (size_t at = 0; at < 21; ++at) {
      std::string value(21, 'v');
      value[at] = static_cast<char>(octet);
      const std::string text = "GET / HTTP/1.1\r\nHost: h\r\nX-V: " + value + "\r\n\r\n";
      RequestParser p;
      RequestHead h;
      const bool allowed = octet == '\t' || (octet >= 0x20 && octet != 0x7f);
      EXPECT_EQ(p.Parse(text, &h), allowed ? ParseStatus::kDone : ParseStatus::kError)
          << "octet " << octet << " at " << at;
      if (!allowed) {
        EXPECT_EQ(p.error_status(), 400);
      }
    }
  }
}

TEST(RequestParserTest, ParsesAHeadInEverySplit) {
  const std::string text =
      "\r\nPOST /service/soap?x=1 HTTP/1.1\r\nHost: mail.example.com:8443\r\n"
      "Content-Length: 5\r\nX-Empty:\r\nConnection: keep-alive, Upgrade\r\n"
      "Upgrade: websocket\r\nExpect: 100-continue\r\n\r\nhello";
  for (size_t step = 1; step <= text.size(); ++step) {
    RequestParser parser;
    RequestHead head;
    ASSERT_EQ(FeedRequest(text, step, &parser, &head), ParseStatus::kDone) << "step " << step;
    EXPECT_EQ(head.method, "POST");
    EXPECT_EQ(head.target, "/service/soap?x=1");
    EXPECT_EQ(head.version_minor, 1);
    EXPECT_EQ(head.host, "mail.example.com:8443");
    ASSERT_EQ(head.fields.size(), 6u);
    EXPECT_EQ(head.fields[2].name, "X-Empty");
    EXPECT_EQ(head.fields[2].value, "");
    EXPECT_EQ(head.semantics.body, BodyKind::kLength);
    EXPECT_EQ(head.semantics.content_length, 5u);
    EXPECT_TRUE(head.semantics.keep_alive);
    EXPECT_TRUE(head.semantics.connection_upgrade);
    EXPECT_EQ(head.semantics.upgrade, "websocket");
    EXPECT_TRUE(head.expect_continue);
    EXPECT_FALSE(head.expect_other);
    EXPECT_EQ(text.substr(parser.head_bytes()), "hello");
  }
}

TEST(RequestParserTest, AnHttp10ContinueExpectationIsIgnoredAndOthersAreNot) {
  RequestParser p;
  RequestHead h;
  ASSERT_EQ(p.Parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", &h),
            ParseStatus::kDone);
  EXPECT_FALSE(h.expect_continue);  // RFC 9110 §10.1.1: no 1xx goes to a 1.0 client
  EXPECT_FALSE(h.expect_other);
  p.Reset();
  ASSERT_EQ(p.Parse("POST / HTTP/1.0\r\nExpect: x-magic\r\nContent-Length: 1\r\n\r\n", &h),
            ParseStatus::kDone);
  EXPECT_TRUE(h.expect_other);
}

TEST(RequestParserTest, VersionsKeepAliveAndTargetForms) {
  RequestParser p;
  RequestHead h;
  ASSERT_EQ(p.Parse("GET / HTTP/1.0\r\n\r\n", &h), ParseStatus::kDone);
  EXPECT_EQ(h.version_minor, 0);
  EXPECT_FALSE(h.semantics.keep_alive);
  EXPECT_EQ(h.semantics.body, BodyKind::kNone);
  p.Reset();
  ASSERT_EQ(p.Parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h), ParseStatus::kDone);
  EXPECT_TRUE(h.semantics.keep_alive);
  p.Reset();
  ASSERT_EQ(p.Parse("GET / HTTP/1.7\r\nHost: a\r\nConnection: close\r\n\r\n", &h),
            ParseStatus::kDone);
  EXPECT_EQ(h.version_minor, 1);  // a higher minor reads as 1.1
  EXPECT_FALSE(h.semantics.keep_alive);
  p.Reset();
  ASSERT_EQ(p.Parse("GET http://Other.example:81/x?y HTTP/1.1\r\nHost: ignored\r\n\r\n", &h),
            ParseStatus::kDone);
  EXPECT_EQ(h.authority, "Other.example:81");
  EXPECT_EQ(h.host, "Other.example:81");  // the target's authority wins
  p.Reset();
  ASSERT_EQ(p.Parse("OPTIONS * HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", &h), ParseStatus::kDone);
  p.Reset();
  ASSERT_EQ(p.Parse("PUT /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
            ParseStatus::kDone);
  EXPECT_EQ(h.semantics.body, BodyKind::kChunked);
  p.Reset();
  ASSERT_EQ(p.Parse("PUT /a HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n"
                    "Content-Length: 7\r\n\r\n",
                    &h),
            ParseStatus::kDone);
  EXPECT_EQ(h.semantics.content_length, 7u);
  p.Reset();
  ASSERT_EQ(p.Parse("GET / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n", &h),
            ParseStatus::kDone);
  EXPECT_TRUE(h.expect_other);
}

struct BadRequest {
  const char* what;
  std::string text;
  int status;
};

// Malformed and ambiguous requests, each with the status a proxy answers.
const std::vector<BadRequest>& BadRequests() {
  static const std::vector<BadRequest> cases = {
      {"HTTP/0.9", "GET /\r\n\r\n", 400},
      {"no target", "GET\r\n\r\n", 400},
      {"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"tab in target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
      {"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
      {"version 2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {"version 0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
      {"version 1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
      {"version letters", "GET / HTTP/x.y\r\nHost: a\r\n\r\n", 400},
      {"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"asterisk on GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"ftp target", "GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"userinfo in target", "GET http://u@a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"no Host on 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"two Hosts, same", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400},
      {"empty Host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 400},
      {"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      {"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
      {"Host bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400},
      {"Host long port", "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", 400},
      {"Host bad literal", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", 400},
      {"bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
      {"bare LF after field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
      {"bare LF as the end", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
      {"bare CR in field", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
      {"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"NUL in value", std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 35), 400},
      {"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400},
      {"control in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
      {"fold as first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
      {"no colon", "GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", 400},
      {"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400},
      {"bad name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n", 400},
      {"CL and TE",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
       "Transfer-Encoding: chunked\r\n\r\n",
       400},
      {"TE and CL",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
       "Content-Length: 3\r\n\r\n",
       400},
      {"differing CLs",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
       "Content-Length: 4\r\n\r\n",
       400},
      {"differing CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", 400},
      {"negative CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
      {"signed CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400},
      {"hex CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400},
      {"empty CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400},
      {"CL with space inside", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400},
      {"overflowing CL",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
      {"CL past 2^63", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n",
       400},
      {"TE not chunked last",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
      {"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400},
      {"TE chunked twice",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
       "Transfer-Encoding: chunked\r\n\r\n",
       400},
      {"TE chunked-ish", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400},
      {"TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 400},
      {"TE bad token", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: g(z), chunked\r\n\r\n",
       400},
      {"TE gzip then chunked",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"too many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
  };
  return cases;
}

TEST(RequestParserTest, MalformedAndAmbiguousRequestsAreRefusedWithTheirStatus) {
  ASSERT_GE(BadRequests().size(), 50u);
  for (const BadRequest& c : BadRequests()) {
    for (size_t step : {c.text.size(), size_t{1}, size_t{7}}) {
      RequestParser parser;
      RequestHead head;
      EXPECT_EQ(FeedRequest(c.text, step, &parser, &head), ParseStatus::kError)
          << c.what << " (step " << step << ")";
      EXPECT_EQ(parser.error_status(), c.status) << c.what << ": " << parser.error();
      EXPECT_FALSE(parser.error().empty()) << c.what;
    }
  }
}

TEST(RequestParserTest, LimitsAnswer414And431) {
  Limits limits;
  limits.line_bytes_max = 64;
  limits.head_bytes_max = 256;
  limits.fields_max = 4;
  RequestParser p(limits);
  RequestHead h;
  // A long request line fails before its end arrives.
  EXPECT_EQ(p.Parse("GET /" + std::string(100, 'a'), &h), ParseStatus::kError);
  EXPECT_EQ(p.error_status(), 414);
  p.Reset();
  EXPECT_EQ(p.Parse("GET / HTTP/1.1\r\nX: " + std::string(100, 'a'), &h), ParseStatus::kError);
  EXPECT_EQ(p.error_status(), 431);
  p.Reset();
  // A long line inside one buffer that also holds its end.
  EXPECT_EQ(p.Parse("GET / HTTP/1.1\r\nX: " + std::string(100, 'a') + "\r\n\r\n", &h),
            ParseStatus::kError);
  EXPECT_EQ(p.error_status(), 431);
  p.Reset();
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 4; ++i) many += "X: 1\r\n";
  EXPECT_EQ(p.Parse(many + "\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(p.error_status(), 431);
  p.Reset();
  std::string big = "GET / HTTP/1.1\r\nHost: a\r\n";
  while (big.size() < 300) big += "Y: " + std::string(40, 'b') + "\r\n";
  limits.fields_max = 100;
  RequestParser q(limits);
  EXPECT_EQ(q.Parse(big, &h), ParseStatus::kError);
  EXPECT_EQ(q.error_status(), 431);
  // Exactly at the limits: accepted.
  RequestParser r(limits);
  std::string at = "GET / HTTP/1.1\r\nHost: a\r\nZ: ";
  at += std::string(64 - 3, 'c') + "\r\n\r\n";
  EXPECT_EQ(r.Parse(at, &h), ParseStatus::kDone) << r.error();
}

TEST(RequestParserTest, PipelinedRequestsOneAfterAnother) {
  const std::string text = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  RequestParser p;
  RequestHead h;
  ASSERT_EQ(p.Parse(text, &h), ParseStatus::kDone);
  EXPECT_EQ(h.target, "/1");
  const std::string_view rest = std::string_view(text).substr(p.head_bytes());
  p.Reset();
  ASSERT_EQ(p.Parse(rest, &h), ParseStatus::kDone);
  EXPECT_EQ(h.target, "/2");
  EXPECT_EQ(p.head_bytes(), rest.size());
}

TEST(ResponseParserTest, FramingByStatusMethodAndFields) {
  ResponseParser p;
  ResponseHead h;
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nServer: x\r\n\r\n";
  for (size_t step = 1; step <= ok.size(); ++step) {
    p.Reset();
    ParseStatus s = ParseStatus::kIncomplete;
    for (size_t n = step; s == ParseStatus::kIncomplete; n += step) {
      s = p.Parse(std::string_view(ok).substr(0, std::min(n, ok.size())), false, &h);
    }
    ASSERT_EQ(s, ParseStatus::kDone) << step;
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.reason, "OK");
    EXPECT_EQ(h.semantics.body, BodyKind::kLength);
    EXPECT_EQ(h.semantics.content_length, 12u);
  }
  p.Reset();
  ASSERT_EQ(p.Parse(ok, /*head_request=*/true, &h), ParseStatus::kDone);
  EXPECT_EQ(h.semantics.body, BodyKind::kNone);
  p.Reset();
  ASSERT_EQ(p.Parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false, &h),
            ParseStatus::kDone);
  EXPECT_EQ(h.semantics.body, BodyKind::kNone);
  p.Reset();
  ASSERT_EQ(p.Parse("HTTP/1.1 204\r\n\r\n", false, &h), ParseStatus::kDone);
  EXPECT_EQ(h.reason, "");
  p.Reset();
  ASSERT_EQ(p.Parse("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                    "Upgrade: websocket\r\n\r\n",
                    false, &h),
            ParseStatus::kDone);
  EXPECT_TRUE(h.semantics.connection_upgrade);
  EXPECT_EQ(h.semantics.body, BodyKind::kNone);
  p.Reset();
  ASSERT_EQ(p.Parse("HTTP/1.1 200 OK\r\n\r\n", false, &h), ParseStatus::kDone);
  EXPECT_EQ(h.semantics.body, BodyKind::kUntilClose);
  EXPECT_FALSE(h.semantics.keep_alive);
  p.Reset();
  ASSERT_EQ(p.Parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, &h),
            ParseStatus::kDone);
  EXPECT_EQ(h.semantics.body, BodyKind::kChunked);
  EXPECT_TRUE(h.semantics.keep_alive);
}

TEST(ResponseParserTest, BadResponsesAreErrors) {
  const char* bad[] = {
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 099 x\r\n\r\n",
      "HTTP/1.1  200 OK\r\n\r\n",
      "HTTP/2 200 OK\r\n\r\n",
      "ICY 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n",
      "HTTP/1.1 200 O\rK\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\r\n",
  };
  for (const char* text : bad) {
    ResponseParser p;
    ResponseHead h;
    EXPECT_EQ(p.Parse(text, false, &h), ParseStatus::kError) << text;
    EXPECT_FALSE(p.error().empty()) << text;
  }
}

// Decodes `text` in steps of `step` bytes; returns the data, or "ERROR: <reason>".
std::string Decode(std::string_view text, size_t step, ChunkedDecoder* d, size_t* used) {
  std::string out = testing::DecodeInSteps(text, step, d, used,
                                           [](const ChunkedDecoder::Step&, std::string_view) {});
  if (d->failed()) return "ERROR: " + std::string(d->error());
  return out;
}

TEST(ChunkedDecoderTest, DecodesInEverySplit) {
  const std::string text =
      "5\r\nhello\r\n1A;name=value;q=\"a \\\" b\" ; x\r\nabcdefghijklmnopqrstuvwxyz\r\n"
      "0\r\nExpires: never\r\nX-T: 1\r\n\r\nNEXT";
  for (size_t step = 1; step <= text.size(); ++step) {
    ChunkedDecoder d;
    size_t used = 0;
    EXPECT_EQ(Decode(text, step, &d, &used), "helloabcdefghijklmnopqrstuvwxyz") << step;
    EXPECT_TRUE(d.done()) << step;
    EXPECT_EQ(text.substr(used), "NEXT") << step;
    EXPECT_EQ(d.body_bytes(), 31u);
  }
}

TEST(ChunkedDecoderTest, BadFramingFails) {
  const char* bad[] = {
      "x\r\n",                  // not hex
      "\r\n",                   // no size
      "5\nhello\r\n0\r\n\r\n",  // bare LF
      "5\r\nhelloX\r\n",        // data longer than its size
      "5\r\nhello\n0\r\n\r\n",  // data without CR LF
      "1000000000000000\r\n",   // 16 hex digits: too large
      "5 \r\nhello\r\n",        // BWS without an extension
      "5;\r\nhello\r\n",        // an extension without a name
      "5;a=\r\nhello\r\n",      // without a value
      "5;a=\"x\r\nhello\r\n",   // an unterminated quoted value
      "5;a b\r\nhello\r\n",     // two names
      "5;a\x01\r\nhello\r\n",   // a control
      "0\r\nX : y\r\n\r\n",     // whitespace before a trailer colon
      "0\r\n y\r\n\r\n",        // obs-fold in trailers
      "0\r\nX\r\n\r\n",         // a trailer without a colon
      "0\r\nX: a\rb\r\n\r\n",   // a bare CR in trailers
      "0\r\n\r\r\n",            // a bare CR at the end
  };
  for (const char* text : bad) {
    ChunkedDecoder d;
    size_t used = 0;
    EXPECT_TRUE(Decode(text, 64, &d, &used).starts_with("ERROR")) << text;
  }
  // Limits: a size line with a long extension, and long trailers.
  ChunkedDecoder d(/*line_bytes_max=*/16, /*trailer_bytes_max=*/16);
  size_t used = 0;
  EXPECT_TRUE(Decode("5;" + std::string(40, 'a') + "\r\n", 64, &d, &used).starts_with("ERROR"));
  ChunkedDecoder t(16, 16);
  EXPECT_TRUE(
      Decode("0\r\nX: " + std::string(40, 'a') + "\r\n\r\n", 64, &t, &used).starts_with("ERROR"));
}

}  // namespace
}  // namespace ringproxy::http
