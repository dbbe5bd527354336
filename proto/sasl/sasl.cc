#include "proto/sasl/sasl.h"

#include <array>

namespace ringproxy::sasl {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> MakeTable() {
  std::array<int8_t, 256> t{};
  for (int8_t& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kTable = MakeTable();

}  // namespace

bool Base64Decode(std::string_view in, std::string* out) {
  if (in.size() % 4 != 0) return false;
  const size_t start = out->size();
  out->reserve(start + in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    int pad = 0;
    if (last && in[i + 3] == '=') pad = in[i + 2] == '=' ? 2 : 1;
    uint32_t bits = 0;
    for (int k = 0; k < 4 - pad; ++k) {
      const int8_t v = kTable[static_cast<unsigned char>(in[i + k])];
      if (v < 0) {
        out->resize(start);
        return false;
      }
      bits = (bits << 6) | static_cast<uint32_t>(v);
    }
    bits <<= 6 * pad;
    // Pad bits must be zero (RFC 4648 §3.5: a canonical encoding).
    if ((pad == 1 && (bits & 0xff) != 0) || (pad == 2 && (bits & 0xffff) != 0)) {
      out->resize(start);
      return false;
    }
    out->push_back(static_cast<char>(bits >> 16));
    if (pad < 2) out->push_back(static_cast<char>((bits >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(bits & 0xff));
  }
  return true;
}

void Base64Encode(std::string_view in, std::string* out) {
  out->reserve(out->size() + (in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t bits = (static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                          (static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8) |
                          static_cast<uint32_t>(static_cast<unsigned char>(in[i + 2]));
    for (int s = 18; s >= 0; s -= 6) out->push_back(kAlphabet[(bits >> s) & 0x3f]);
  }
  const size_t rest = in.size() - i;
  if (rest == 0) return;
  uint32_t bits = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
  if (rest == 2) bits |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
  out->push_back(kAlphabet[(bits >> 18) & 0x3f]);
  out->push_back(kAlphabet[(bits >> 12) & 0x3f]);
  out->push_back(rest == 2 ? kAlphabet[(bits >> 6) & 0x3f] : '=');
  out->push_back('=');
}

std::string_view PlainErrorName(PlainError e) {
  switch (e) {
    case PlainError::kNone:
      return "none";
    case PlainError::kBadBase64:
      return "bad base64";
    case PlainError::kBadFormat:
      return "not authzid NUL authcid NUL password";
    case PlainError::kEmptyAuthcid:
      return "empty authentication identity";
    case PlainError::kLoginTooLong:
      return "login too long";
    case PlainError::kPasswordTooLong:
      return "password too long";
  }
  return "unknown";
}

PlainError ParsePlain(std::string_view base64, const PlainLimits& limits, PlainCredentials* out) {
  *out = PlainCredentials{};
  std::string message;
  if (!Base64Decode(base64, &message)) return PlainError::kBadBase64;
  return ParsePlainMessage(message, limits, out);
}

PlainError ParsePlainMessage(std::string_view message, const PlainLimits& limits,
                             PlainCredentials* out) {
  *out = PlainCredentials{};
  const size_t first = message.find('\0');
  if (first == std::string_view::npos) return PlainError::kBadFormat;
  const size_t second = message.find('\0', first + 1);
  if (second == std::string_view::npos) return PlainError::kBadFormat;
  if (message.find('\0', second + 1) != std::string_view::npos) return PlainError::kBadFormat;
  std::string_view m = message;
  std::string_view authzid = m.substr(0, first);
  std::string_view authcid = m.substr(first + 1, second - first - 1);
  std::string_view password = m.substr(second + 1);
  if (authcid.empty()) return PlainError::kEmptyAuthcid;
  if (authcid.size() > limits.login_bytes_max || authzid.size() > limits.login_bytes_max) {
    return PlainError::kLoginTooLong;
  }
  if (password.size() > limits.password_bytes_max) return PlainError::kPasswordTooLong;
  out->authzid = authzid;
  out->authcid = authcid;
  out->password = password;
  return PlainError::kNone;
}

void WritePlain(std::string_view authzid, std::string_view authcid, std::string_view password,
                std::string* out) {
  std::string message;
  message.reserve(authzid.size() + authcid.size() + password.size() + 2);
  message.append(authzid);
  message.push_back('\0');
  message.append(authcid);
  message.push_back('\0');
  message.append(password);
  Base64Encode(message, out);
}

}  // namespace ringproxy::sasl
