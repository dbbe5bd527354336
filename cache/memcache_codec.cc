#include "cache/memcache_codec.h"

#include "cache/md5.h"

namespace ringproxy::memcache {
namespace {

void Put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}
void Put32(std::string* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<char>(v >> s));
}
void Put64(std::string* out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out->push_back(static_cast<char>(v >> s));
}
uint64_t Get(std::string_view d, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | static_cast<uint8_t>(d[at + static_cast<size_t>(i)]);
  return v;
}

void Header(uint8_t magic, Opcode op, size_t key_len, size_t extras_len, uint16_t status,
            size_t body_len, uint32_t opaque, uint64_t cas, std::string* out) {
  out->push_back(static_cast<char>(magic));
  out->push_back(static_cast<char>(op));
  Put16(out, static_cast<uint16_t>(key_len));
  out->push_back(static_cast<char>(extras_len));
  out->push_back(0);  // data type: raw bytes
  Put16(out, status);
  Put32(out, static_cast<uint32_t>(body_len));
  Put32(out, opaque);
  Put64(out, cas);
}

ParseResult Parse(std::string_view d, const Limits& limits, uint8_t magic) {
  ParseResult r;
  if (d.size() < kHeaderSize) {
    // A wrong magic byte is an error as soon as it is seen, not after 24 bytes.
    r.error = !d.empty() && static_cast<uint8_t>(d[0]) != magic ? ParseError::kBadMagic
                                                                : ParseError::kNeedMore;
    return r;
  }
  Message& m = r.message;
  m.magic = static_cast<uint8_t>(d[0]);
  if (m.magic != magic) {
    r.error = ParseError::kBadMagic;
    return r;
  }
  m.opcode = static_cast<Opcode>(d[1]);
  const auto key_len = static_cast<size_t>(Get(d, 2, 2));
  const auto extras_len = static_cast<size_t>(static_cast<uint8_t>(d[4]));
  m.data_type = static_cast<uint8_t>(d[5]);
  m.status_or_vbucket = static_cast<uint16_t>(Get(d, 6, 2));
  const uint64_t body_len = Get(d, 8, 4);
  m.opaque = static_cast<uint32_t>(Get(d, 12, 4));
  m.cas = Get(d, 16, 8);
  if (body_len > limits.max_body) {
    r.error = ParseError::kBodyTooLarge;
    r.consumed = kHeaderSize + static_cast<size_t>(body_len);  // what a reader may skip
    return r;
  }
  if (extras_len + key_len > body_len) {
    r.error = ParseError::kBadLengths;
    return r;
  }
  if (m.data_type != 0) {
    r.error = ParseError::kBadDataType;
    return r;
  }
  if (d.size() < kHeaderSize + body_len) {
    r.error = ParseError::kNeedMore;
    return r;
  }
  m.extras = d.substr(kHeaderSize, extras_len);
  m.key = d.substr(kHeaderSize + extras_len, key_len);
  m.value = d.substr(kHeaderSize + extras_len + key_len,
                     static_cast<size_t>(body_len) - extras_len - key_len);
  r.consumed = kHeaderSize + static_cast<size_t>(body_len);
  return r;
}

}  // namespace

std::string_view StatusName(uint16_t status) {
  switch (static_cast<Status>(status)) {
    case Status::kNoError:
      return "no error";
    case Status::kKeyNotFound:
      return "key not found";
    case Status::kKeyExists:
      return "key exists";
    case Status::kValueTooLarge:
      return "value too large";
    case Status::kInvalidArguments:
      return "invalid arguments";
    case Status::kItemNotStored:
      return "item not stored";
    case Status::kNonNumericValue:
      return "incr/decr on a non-numeric value";
    case Status::kVbucketElsewhere:
      return "vbucket belongs to another server";
    case Status::kAuthError:
      return "authentication error";
    case Status::kAuthContinue:
      return "authentication continue";
    case Status::kUnknownCommand:
      return "unknown command";
    case Status::kOutOfMemory:
      return "out of memory";
    case Status::kNotSupported:
      return "not supported";
    case Status::kInternalError:
      return "internal error";
    case Status::kBusy:
      return "busy";
    case Status::kTemporaryFailure:
      return "temporary failure";
  }
  return "unknown status";
}

std::string_view ParseErrorName(ParseError e) {
  switch (e) {
    case ParseError::kNone:
      return "none";
    case ParseError::kNeedMore:
      return "need more bytes";
    case ParseError::kBadMagic:
      return "bad magic byte";
    case ParseError::kBodyTooLarge:
      return "body length over the limit";
    case ParseError::kBadLengths:
      return "extras and key longer than the body";
    case ParseError::kBadDataType:
      return "unknown data type";
  }
  return "?";
}

ParseResult ParseResponse(std::string_view data, const Limits& limits) {
  return Parse(data, limits, kResponseMagic);
}

ParseResult ParseRequest(std::string_view data, const Limits& limits) {
  return Parse(data, limits, kRequestMagic);
}

void EncodeGet(Opcode op, std::string_view key, uint32_t opaque, std::string* out) {
  Header(kRequestMagic, op, key.size(), 0, 0, key.size(), opaque, 0, out);
  out->append(key);
}

void EncodeStore(Opcode op, std::string_view key, std::string_view value, uint32_t flags,
                 uint32_t expiry, uint32_t opaque, uint64_t cas, std::string* out) {
  Header(kRequestMagic, op, key.size(), 8, 0, 8 + key.size() + value.size(), opaque, cas, out);
  Put32(out, flags);
  Put32(out, expiry);
  out->append(key);
  out->append(value);
}

void EncodeCounter(Opcode op, std::string_view key, uint64_t delta, uint64_t initial,
                   uint32_t expiry, uint32_t opaque, std::string* out) {
  Header(kRequestMagic, op, key.size(), 20, 0, 20 + key.size(), opaque, 0, out);
  Put64(out, delta);
  Put64(out, initial);
  Put32(out, expiry);
  out->append(key);
}

void EncodeDelete(std::string_view key, uint32_t opaque, std::string* out) {
  EncodeGet(Opcode::kDelete, key, opaque, out);
}

void EncodeSimple(Opcode op, uint32_t opaque, std::string* out) {
  Header(kRequestMagic, op, 0, 0, 0, 0, opaque, 0, out);
}

void EncodeResponse(const Message& m, std::string* out) {
  Header(kResponseMagic, m.opcode, m.key.size(), m.extras.size(), m.status_or_vbucket,
         m.extras.size() + m.key.size() + m.value.size(), m.opaque, m.cas, out);
  out->append(m.extras);
  out->append(m.key);
  out->append(m.value);
}

bool CounterValue(const Message& m, uint64_t* out) {
  if (m.value.size() != 8) return false;
  *out = Get(m.value, 0, 8);
  return true;
}

bool GetFlags(const Message& m, uint32_t* out) {
  if (m.extras.size() != 4) return false;
  *out = static_cast<uint32_t>(Get(m.extras, 0, 4));
  return true;
}

std::string NormalizeKey(std::string_view key) {
  if (key.size() <= kMaxKeyLength) return std::string(key);
  return Md5Hex(key);
}

}  // namespace ringproxy::memcache
