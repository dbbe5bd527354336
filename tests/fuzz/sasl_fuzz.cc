// Properties of the SASL codecs (proto/sasl/sasl.h) on arbitrary bytes: base64 decodes
// what it encodes; whatever strict base64 decodes encodes back to the same text (one
// canonical form); PLAIN reads back what it writes, within the limits, and a refused
// message keeps no part of itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proto/sasl/sasl.h"
#include "tests/fuzz/fuzz.h"

using namespace ringproxy::sasl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  std::string encoded;
  Base64Encode(in, &encoded);
  std::string decoded;
  FUZZ_CHECK(Base64Decode(encoded, &decoded) && decoded == in);

  std::string raw;
  if (Base64Decode(in, &raw)) {
    std::string again;
    Base64Encode(raw, &again);
    FUZZ_CHECK(again == in);
  }

  PlainLimits limits{.login_bytes_max = 16, .password_bytes_max = 16};
  PlainCredentials c;
  if (ParsePlain(in, limits, &c) != PlainError::kNone) {
    FUZZ_CHECK(c.authcid.empty() && c.password.empty() && c.authzid.empty());
  }
  // Three fields cut from the input at its first two NULs (or its thirds).
  std::string_view parts[3];
  size_t a = in.find('\0'), b = a == std::string_view::npos ? a : in.find('\0', a + 1);
  if (b == std::string_view::npos) {
    parts[0] = in.substr(0, size / 3);
    parts[1] = in.substr(size / 3, size / 3);
    parts[2] = in.substr(2 * (size / 3));
  } else {
    parts[0] = in.substr(0, a);
    parts[1] = in.substr(a + 1, b - a - 1);
    parts[2] = in.substr(b + 1);
  }
  std::string plain;
  WritePlain(parts[0], parts[1], parts[2], &plain);
  PlainError e = ParsePlain(plain, limits, &c);
  const bool nul_inside = parts[2].find('\0') != std::string_view::npos ||
                          parts[0].find('\0') != std::string_view::npos ||
                          parts[1].find('\0') != std::string_view::npos;
  const bool fits = parts[0].size() <= 16 && parts[1].size() <= 16 && parts[2].size() <= 16;
  if (!nul_inside && fits && !parts[1].empty()) {
    FUZZ_CHECK(e == PlainError::kNone);
    FUZZ_CHECK(c.authzid == parts[0] && c.authcid == parts[1] && c.password == parts[2]);
  } else {
    FUZZ_CHECK(e != PlainError::kNone);
  }
  return 0;
}
