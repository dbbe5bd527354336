// The binary protocol codec: round trips of every request kind, responses split at
// every boundary, and each malformed input with its error.
#include "cache/memcache_codec.h"

#include <string>

#include "gtest/gtest.h"

namespace ringproxy::memcache {
namespace {

const Limits kLimits{1 << 20};

TEST(MemcacheCodecTest, GetRequestBytesAreExact) {
  std::string out;
  EncodeGet(Opcode::kGetK, "key", 0x01020304, &out);
  const unsigned char want[] = {0x80, 0x0c, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
                                0x00, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04, 0,    0,
                                0,    0,    0,    0,    0,    0,    'k',  'e',  'y'};
  ASSERT_EQ(out.size(), sizeof(want));
  EXPECT_EQ(0, memcmp(out.data(), want, sizeof(want)));
}

TEST(MemcacheCodecTest, RequestsRoundTrip) {
  std::string out;
  EncodeStore(Opcode::kAdd, "route:proto=imap;user=a@b", "10.0.0.1:7143", 0, 3600, 7, 0, &out);
  EncodeCounter(Opcode::kIncrement, "throttle:user=a@b", 1, 1, 60, 8, &out);
  EncodeDelete("alias:user=a;ip=1.2.3.4", 9, &out);
  EncodeSimple(Opcode::kNoop, 10, &out);
  std::string_view rest = out;
  ParseResult a = ParseRequest(rest, kLimits);
  ASSERT_EQ(a.error, ParseError::kNone);
  EXPECT_EQ(a.message.opcode, Opcode::kAdd);
  EXPECT_EQ(a.message.key, "route:proto=imap;user=a@b");
  EXPECT_EQ(a.message.value, "10.0.0.1:7143");
  EXPECT_EQ(a.message.extras.size(), 8u);
  EXPECT_EQ(a.message.opaque, 7u);
  rest.remove_prefix(a.consumed);
  ParseResult b = ParseRequest(rest, kLimits);
  ASSERT_EQ(b.error, ParseError::kNone);
  EXPECT_EQ(b.message.opcode, Opcode::kIncrement);
  EXPECT_EQ(b.message.extras.size(), 20u);
  EXPECT_EQ(b.message.key, "throttle:user=a@b");
  rest.remove_prefix(b.consumed);
  ParseResult c = ParseRequest(rest, kLimits);
  ASSERT_EQ(c.error, ParseError::kNone);
  EXPECT_EQ(c.message.opcode, Opcode::kDelete);
  rest.remove_prefix(c.consumed);
  ParseResult d = ParseRequest(rest, kLimits);
  ASSERT_EQ(d.error, ParseError::kNone);
  EXPECT_EQ(d.message.opcode, Opcode::kNoop);
  EXPECT_EQ(d.consumed, rest.size());
}

std::string Response(Opcode op, Status status, std::string_view extras, std::string_view key,
                     std::string_view value, uint32_t opaque) {
  Message m;
  m.opcode = op;
  m.status_or_vbucket = static_cast<uint16_t>(status);
  m.extras = extras;
  m.key = key;
  m.value = value;
  m.opaque = opaque;
  m.cas = 0x1122334455667788ull;
  std::string out;
  EncodeResponse(m, &out);
  return out;
}

TEST(MemcacheCodecTest, ResponsesParseWholeAndInPieces) {
  const std::string flags("\0\0\0\x05", 4);
  std::string stream = Response(Opcode::kGetK, Status::kNoError, flags, "k", "v-a-l-u-e", 1) +
                       Response(Opcode::kGetK, Status::kKeyNotFound, "", "k2", "Not found", 2) +
                       Response(Opcode::kIncrement, Status::kNoError, "", "",
                                std::string("\0\0\0\0\0\0\0\x2a", 8), 3);
  for (size_t step : {size_t{1}, size_t{2}, size_t{5}, size_t{10}, size_t{100}, stream.size()}) {
    SCOPED_TRACE(step);
    std::string buf;
    size_t fed = 0;
    std::vector<Message> got;
    std::vector<std::string> storage;  // keep views valid
    while (fed < stream.size() || !buf.empty()) {
      ParseResult r = ParseResponse(buf, kLimits);
      if (r.error == ParseError::kNeedMore) {
        ASSERT_LT(fed, stream.size());
        size_t n = std::min(step, stream.size() - fed);
        buf.append(stream, fed, n);
        fed += n;
        continue;
      }
      ASSERT_EQ(r.error, ParseError::kNone);
      storage.push_back(buf.substr(0, r.consumed));
      got.push_back(ParseResponse(storage.back(), kLimits).message);
      buf.erase(0, r.consumed);
    }
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].value, "v-a-l-u-e");
    uint32_t f = 0;
    EXPECT_TRUE(GetFlags(got[0], &f));
    EXPECT_EQ(f, 5u);
    EXPECT_EQ(got[0].cas, 0x1122334455667788ull);
    EXPECT_EQ(got[1].status(), Status::kKeyNotFound);
    EXPECT_EQ(got[1].key, "k2");
    uint64_t counter = 0;
    EXPECT_TRUE(CounterValue(got[2], &counter));
    EXPECT_EQ(counter, 42u);
  }
}

TEST(MemcacheCodecTest, ShortHeaderNeedsMore) {
  std::string r = Response(Opcode::kNoop, Status::kNoError, "", "", "", 1);
  for (size_t n = 0; n < kHeaderSize; ++n) {
    EXPECT_EQ(ParseResponse(std::string_view(r).substr(0, n), kLimits).error, ParseError::kNeedMore)
        << n;
  }
  EXPECT_EQ(ParseResponse(r, kLimits).error, ParseError::kNone);
}

TEST(MemcacheCodecTest, WrongMagicIsAnErrorFromTheFirstByte) {
  EXPECT_EQ(ParseResponse("\x80", kLimits).error, ParseError::kBadMagic);
  EXPECT_EQ(ParseResponse("VALUE key 0 5\r\n", kLimits).error, ParseError::kBadMagic);
  std::string r = Response(Opcode::kNoop, Status::kNoError, "", "", "", 1);
  EXPECT_EQ(ParseRequest(r, kLimits).error, ParseError::kBadMagic);
}

TEST(MemcacheCodecTest, BodyLengthPastTheLimit) {
  std::string r = Response(Opcode::kGetK, Status::kNoError, "", "", std::string(1000, 'x'), 1);
  EXPECT_EQ(ParseResponse(r, Limits{999}).error, ParseError::kBodyTooLarge);
  EXPECT_EQ(ParseResponse(r, Limits{1000}).error, ParseError::kNone);
  // Found from the header alone, without waiting for the body.
  EXPECT_EQ(ParseResponse(std::string_view(r).substr(0, kHeaderSize), Limits{999}).error,
            ParseError::kBodyTooLarge);
}

TEST(MemcacheCodecTest, ExtrasAndKeyLongerThanTheBody) {
  std::string r = Response(Opcode::kGetK, Status::kNoError, "", "key", "", 1);
  r[11] = 2;  // total body 2 < key length 3
  EXPECT_EQ(ParseResponse(r, kLimits).error, ParseError::kBadLengths);
}

TEST(MemcacheCodecTest, UnknownDataType) {
  std::string r = Response(Opcode::kNoop, Status::kNoError, "", "", "", 1);
  r[5] = 1;
  EXPECT_EQ(ParseResponse(r, kLimits).error, ParseError::kBadDataType);
}

TEST(MemcacheCodecTest, EveryStatusHasAName) {
  for (uint16_t s : {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x20, 0x21, 0x81, 0x82, 0x83,
                     0x84, 0x85, 0x86}) {
    EXPECT_NE(StatusName(s), "unknown status") << s;
  }
  EXPECT_EQ(StatusName(0x99), "unknown status");
}

TEST(MemcacheCodecTest, CounterAndFlagsNeedTheRightSizes) {
  Message m;
  uint64_t c;
  uint32_t f;
  m.value = "1234567";
  EXPECT_FALSE(CounterValue(m, &c));
  m.extras = "123";
  EXPECT_FALSE(GetFlags(m, &f));
}

TEST(MemcacheCodecTest, LongKeysBecomeTheirMd5) {
  EXPECT_EQ(NormalizeKey(std::string(250, 'x')), std::string(250, 'x'));
  EXPECT_EQ(NormalizeKey(std::string(251, 'x')), "9aa112cf3f550372e7ce6446e5befbb9");
}

}  // namespace
}  // namespace ringproxy::memcache
