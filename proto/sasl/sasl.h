// SASL pieces the mail proxy needs before login (RFC 4422): strict base64 (RFC 4648 §4),
// the PLAIN message (RFC 4616) read from a client and written for an upstream, and the
// LOGIN mechanism's two prompts. Pure: no I/O; outputs go to caller-owned strings.
//
// Strict means: only the base64 alphabet, length a multiple of 4, '=' only as the last
// one or two characters, and zero pad bits. A client's whitespace or URL-safe alphabet
// is an error, not something to guess at.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringproxy::sasl {

// Appends the decoded bytes; false (out unchanged) on anything not strict base64.
bool Base64Decode(std::string_view in, std::string* out);
// Appends the encoding of `in`.
void Base64Encode(std::string_view in, std::string* out);

// The limits Zimbra's proxy applies before any lookup (spec §4.1).
struct PlainLimits {
  size_t login_bytes_max = 256;      // authcid and authzid each
  size_t password_bytes_max = 1024;  // passwd
};

enum class PlainError : uint8_t {
  kNone,
  kBadBase64,
  kBadFormat,  // not authzid NUL authcid NUL passwd, or a NUL inside a field
  kEmptyAuthcid,
  kLoginTooLong,
  kPasswordTooLong,
};

std::string_view PlainErrorName(PlainError e);

struct PlainCredentials {
  std::string authzid;  // empty: act as authcid
  std::string authcid;
  std::string password;
};

// The client's response, base64 as sent ("=" for an empty response is the session's to
// turn into ""). On error `out` may hold part of the message: clear it (a password).
PlainError ParsePlain(std::string_view base64, const PlainLimits& limits, PlainCredentials* out);
// The same for a message already decoded (an AUTHENTICATE initial response).
PlainError ParsePlainMessage(std::string_view message, const PlainLimits& limits,
                             PlainCredentials* out);
// Appends base64(authzid NUL authcid NUL password).
void WritePlain(std::string_view authzid, std::string_view authcid, std::string_view password,
                std::string* out);

// AUTH LOGIN's prompts, base64 of "Username:" and "Password:" (the draft's wording that
// clients expect).
inline constexpr std::string_view kLoginUserPrompt = "VXNlcm5hbWU6";
inline constexpr std::string_view kLoginPasswordPrompt = "UGFzc3dvcmQ6";

}  // namespace ringproxy::sasl
