// The one piece of JSON the logs need: a string value, escaped per RFC 8259 (quotes,
// backslash, control characters). JSON text is UTF-8: well-formed UTF-8 passes as it
// is, and each byte that is not part of a well-formed sequence (a client's Latin-1
// header, a raw 0xFF in a user name) becomes U+FFFD, so every line stays valid JSON.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ringproxy {

// The length of the well-formed UTF-8 sequence (RFC 3629) that starts s[at] (a byte
// >= 0x80), or 0 when there is none.
inline size_t Utf8SequenceAt(std::string_view s, size_t at) {
  const auto byte = [&](size_t i) {
    return at + i < s.size() ? static_cast<unsigned char>(s[at + i]) : 0;
  };
  const auto cont = [&](size_t i) { return (byte(i) & 0xc0) == 0x80; };
  const unsigned char c = byte(0);
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;  // no overlong forms
    const unsigned char hi = c == 0xed ? 0x9f : 0xbf;  // no surrogates
    return byte(1) >= lo && byte(1) <= hi && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;  // nothing past U+10FFFF
    return byte(1) >= lo && byte(1) <= hi && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

inline void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else if (c < 0x80) {
          out->push_back(static_cast<char>(c));
        } else if (const size_t n = Utf8SequenceAt(s, i); n != 0) {
          out->append(s.substr(i, n));
          i += n - 1;
        } else {
          out->append("\\ufffd");
        }
    }
  }
  out->push_back('"');
}

}  // namespace ringproxy
