// The memcached binary protocol as a pure codec: request encoders that append to a
// caller's buffer, and a response (and request) parser that takes a byte span and
// returns how much it consumed and views into it. No I/O, no clock, no allocation.
// Header layout (24 bytes, big-endian): magic, opcode, key length (2), extras length,
// data type, vbucket (request) / status (response) (2), total body length (4),
// opaque (4), CAS (8); then extras, key, value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ringproxy::memcache {

inline constexpr size_t kHeaderSize = 24;
inline constexpr uint8_t kRequestMagic = 0x80;
inline constexpr uint8_t kResponseMagic = 0x81;
inline constexpr size_t kMaxKeyLength = 250;
// INCR/DECR with this expiry fail with NOT_FOUND instead of creating the counter.
inline constexpr uint32_t kNoAutoCreate = 0xffffffff;

enum class Opcode : uint8_t {
  kGet = 0x00,
  kSet = 0x01,
  kAdd = 0x02,
  kReplace = 0x03,
  kDelete = 0x04,
  kIncrement = 0x05,
  kDecrement = 0x06,
  kQuit = 0x07,
  kFlush = 0x08,
  kGetQ = 0x09,
  kNoop = 0x0a,
  kVersion = 0x0b,
  kGetK = 0x0c,
  kGetKQ = 0x0d,
  kAppend = 0x0e,
  kPrepend = 0x0f,
  kStat = 0x10,
  kSetQ = 0x11,
  kAddQ = 0x12,
  kTouch = 0x1c,
};

enum class Status : uint16_t {
  kNoError = 0x00,
  kKeyNotFound = 0x01,
  kKeyExists = 0x02,
  kValueTooLarge = 0x03,
  kInvalidArguments = 0x04,
  kItemNotStored = 0x05,
  kNonNumericValue = 0x06,
  kVbucketElsewhere = 0x07,
  kAuthError = 0x20,
  kAuthContinue = 0x21,
  kUnknownCommand = 0x81,
  kOutOfMemory = 0x82,
  kNotSupported = 0x83,
  kInternalError = 0x84,
  kBusy = 0x85,
  kTemporaryFailure = 0x86,
};

std::string_view StatusName(uint16_t status);

// A decoded message (request or response); views point into the parsed bytes.
struct Message {
  uint8_t magic = 0;
  Opcode opcode = Opcode::kGet;
  uint8_t data_type = 0;
  uint16_t status_or_vbucket = 0;
  uint32_t opaque = 0;
  uint64_t cas = 0;
  std::string_view extras;
  std::string_view key;
  std::string_view value;

  Status status() const { return static_cast<Status>(status_or_vbucket); }
};

struct Limits {
  uint32_t max_body = 1 << 20;  // a response larger than this is a protocol error
};

enum class ParseError : uint8_t {
  kNone,
  kNeedMore,      // not a whole message yet: feed more bytes
  kBadMagic,      // not this side's magic byte
  kBodyTooLarge,  // total body length above Limits::max_body (header read: opaque set,
                  // consumed the whole message's size, so the framing holds)
  kBadLengths,    // extras + key longer than the body
  kBadDataType,   // data type other than raw bytes (0)
};

std::string_view ParseErrorName(ParseError e);

struct ParseResult {
  ParseError error = ParseError::kNone;
  size_t consumed = 0;  // bytes of one whole message when error is kNone or kBodyTooLarge
  Message message;
};

ParseResult ParseResponse(std::string_view data, const Limits& limits);
ParseResult ParseRequest(std::string_view data, const Limits& limits);

// Encoders append one request to `out`.
void EncodeGet(Opcode op, std::string_view key, uint32_t opaque, std::string* out);
void EncodeStore(Opcode op, std::string_view key, std::string_view value, uint32_t flags,
                 uint32_t expiry, uint32_t opaque, uint64_t cas, std::string* out);
void EncodeCounter(Opcode op, std::string_view key, uint64_t delta, uint64_t initial,
                   uint32_t expiry, uint32_t opaque, std::string* out);
void EncodeDelete(std::string_view key, uint32_t opaque, std::string* out);
void EncodeSimple(Opcode op, uint32_t opaque, std::string* out);  // NOOP, VERSION, QUIT
// A response, for tests and for servers built on this codec.
void EncodeResponse(const Message& m, std::string* out);

// The counter in an INCREMENT/DECREMENT response (8 bytes, big-endian).
bool CounterValue(const Message& m, uint64_t* out);
// The flags of a GET response (4 bytes of extras).
bool GetFlags(const Message& m, uint32_t* out);

// Zimbra's rule: keys longer than 250 bytes are replaced by their MD5 in lowercase
// hex, so that every key fits the protocol and both proxies agree on it.
std::string NormalizeKey(std::string_view key);

}  // namespace ringproxy::memcache
