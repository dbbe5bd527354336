// The load generator's HTTP response reader: every case whole and split at every
// 1, 2, 5, 10 and 100 bytes must give the same result.
#include "bench/loadgen/http_response.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ringproxy::loadgen {
namespace {

struct Outcome {
  bool done = false;
  bool failed = false;
  std::string error;
  int status = 0;
  uint64_t body = 0;
  bool keep_alive = false;
  size_t consumed = 0;
};

Outcome Read(std::string_view input, size_t step, bool eof) {
  HttpResponseReader r;
  Outcome o;
  size_t pos = 0;
  while (pos < input.size() && !r.done() && !r.failed()) {
    size_t n = std::min(step, input.size() - pos);
    size_t used = r.Feed(input.substr(pos, n));
    o.consumed += used;
    pos += used;
    if (used < n) break;  // the reader stopped at the end of a response
  }
  if (eof) r.FeedEof();
  o.done = r.done();
  o.failed = r.failed();
  o.error = r.error();
  o.status = r.status();
  o.body = r.body_bytes();
  o.keep_alive = r.keep_alive();
  return o;
}

void ExpectSameAtEverySplit(std::string_view input, bool eof, const Outcome& want) {
  for (size_t step : {size_t{1}, size_t{2}, size_t{5}, size_t{10}, size_t{100}, input.size()}) {
    if (step == 0) continue;
    Outcome got = Read(input, step, eof);
    SCOPED_TRACE("split every " + std::to_string(step));
    EXPECT_EQ(got.done, want.done);
    EXPECT_EQ(got.failed, want.failed);
    EXPECT_EQ(got.error, want.error);
    if (want.done) {
      EXPECT_EQ(got.status, want.status);
      EXPECT_EQ(got.body, want.body);
      EXPECT_EQ(got.keep_alive, want.keep_alive);
      EXPECT_EQ(got.consumed, want.consumed);
    }
  }
}

TEST(HttpResponseTest, ContentLength) {
  std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
  ExpectSameAtEverySplit(r, false, {true, false, "", 200, 5, true, r.size()});
}

TEST(HttpResponseTest, StopsAtTheEndOfAResponse) {
  std::string one = "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc";
  std::string two = one + "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  ExpectSameAtEverySplit(two, false, {true, false, "", 200, 3, true, one.size()});
}

TEST(HttpResponseTest, Chunked) {
  std::string r =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: y\r\n\r\n";
  ExpectSameAtEverySplit(r, false, {true, false, "", 200, 23, true, r.size()});
}

TEST(HttpResponseTest, ConnectionCloseAndHttp10) {
  std::string close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
  ExpectSameAtEverySplit(close, false, {true, false, "", 200, 2, false, close.size()});
  std::string old = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
  ExpectSameAtEverySplit(old, false, {true, false, "", 200, 2, false, old.size()});
  std::string kept = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
  ExpectSameAtEverySplit(kept, false, {true, false, "", 200, 0, true, kept.size()});
}

TEST(HttpResponseTest, BodyUntilClose) {
  std::string r = "HTTP/1.1 200 OK\r\n\r\nall of this";
  ExpectSameAtEverySplit(r, true, {true, false, "", 200, 11, false, r.size()});
}

TEST(HttpResponseTest, NoBodyStatuses) {
  std::string r = "HTTP/1.1 204 No Content\r\n\r\n";
  ExpectSameAtEverySplit(r, false, {true, false, "", 204, 0, true, r.size()});
  std::string n = "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n";
  ExpectSameAtEverySplit(n, false, {true, false, "", 304, 0, true, n.size()});
}

TEST(HttpResponseTest, InterimResponsesAreSkipped) {
  // A 100 Continue or 103 Early Hints comes before the response to the same request:
  // taken for the final one, it paired every later response with the wrong request.
  std::string r =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  ExpectSameAtEverySplit(r, false, {true, false, "", 200, 2, true, r.size()});
}

TEST(HttpResponseTest, RepeatedLengthAndStatusWithoutReason) {
  std::string r = "HTTP/1.1 200\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok";
  ExpectSameAtEverySplit(r, false, {true, false, "", 200, 2, true, r.size()});
}

// Whether the body is `fill` repeated, fed in pieces of `step` bytes.
bool BodyMatches(std::string_view input, std::string fill, size_t step) {
  HttpResponseReader r;
  r.ExpectFill(std::move(fill));
  for (size_t pos = 0; pos < input.size() && !r.done() && !r.failed(); pos += step) {
    r.Feed(input.substr(pos, step));
  }
  EXPECT_TRUE(r.done());
  return r.body_matches();
}

TEST(HttpResponseTest, BodyIsCheckedAgainstTheFillAtEverySplit) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\n";
  const std::string chunked_head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "ringproxy-ringproxy-ringp";
  std::string bad = body;
  bad[17] = 'X';
  for (size_t step : {size_t{1}, size_t{3}, size_t{7}, size_t{100}}) {
    SCOPED_TRACE("split every " + std::to_string(step));
    EXPECT_TRUE(BodyMatches(head + body, "ringproxy-", step));
    EXPECT_FALSE(BodyMatches(head + bad, "ringproxy-", step));
    // Chunk boundaries do not restart the pattern.
    EXPECT_TRUE(BodyMatches(chunked_head + "d\r\n" + body.substr(0, 13) + "\r\nc\r\n" +
                                body.substr(13) + "\r\n0\r\n\r\n",
                            "ringproxy-", step));
    EXPECT_FALSE(BodyMatches(chunked_head + "d\r\n" + body.substr(0, 13) + "\r\nd\r\n" +
                                 body.substr(0, 13) + "\r\n0\r\n\r\n",
                             "ringproxy-", step));
  }
  // Kept across responses: the second body starts the pattern again.
  HttpResponseReader r;
  r.ExpectFill("ringproxy-");
  r.Feed(head + body);
  ASSERT_TRUE(r.done() && r.body_matches());
  r.Reset();
  r.Feed(head + bad);
  EXPECT_TRUE(r.done());
  EXPECT_FALSE(r.body_matches());
  r.Reset();
  r.Feed(head + body);
  EXPECT_TRUE(r.body_matches());
}

struct BadCase {
  const char* name;
  std::string input;
  bool eof;
  const char* error;
};

class HttpResponseBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(HttpResponseBadTest, IsAnErrorWithAReason) {
  const BadCase& c = GetParam();
  ExpectSameAtEverySplit(c.input, c.eof, {false, true, c.error, 0, 0, false, 0});
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HttpResponseBadTest,
    ::testing::Values(
        BadCase{"not_http", "SSH-2.0-OpenSSH\r\n\r\n", false, "bad status line"},
        BadCase{"bad_code", "HTTP/1.1 2x0 OK\r\n\r\n", false, "bad status code"},
        BadCase{"bad_header", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", false, "bad header line"},
        BadCase{"bad_length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false,
                "bad Content-Length"},
        BadCase{"bad_chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false,
                "bad chunk size"},
        BadCase{"chunk_without_crlf",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", false,
                "chunk data not followed by CRLF"},
        BadCase{"head_too_long", "HTTP/1.1 200 OK\r\nX: " + std::string(20000, 'a'), false,
                "response head longer than 16 KiB"},
        BadCase{"closed_mid_body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true,
                "connection closed mid-response"},
        BadCase{"closed_before", "", true, "connection closed before a response"},
        BadCase{"four_digit_status", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", false,
                "bad status code"},
        BadCase{"differing_lengths",
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", false,
                "bad Content-Length"},
        BadCase{"chunked_not_final",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
                false, "transfer coding not a final chunked"},
        BadCase{"length_and_chunked",
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3\r\nabc\r\n0\r\n\r\n",
                false, "both Content-Length and Transfer-Encoding"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ringproxy::loadgen
