// Host names for SNI: normalising a name and choosing, among configured names, the one
// a ClientHello asks for. Pure: no I/O, no wolfSSL, no allocation when normalising or
// selecting (the index allocates only while it is built, on the control thread).
//
// Rules (also the rules for certificate file names, tls/cert_dir.h):
//  * a name is matched case-insensitively: normalising lowers ASCII letters;
//  * one trailing dot is stripped ("example.com." is "example.com");
//  * labels are 1..63 bytes of [a-z0-9-_], the whole name at most 253 bytes; anything
//    else (empty labels, spaces, bytes >= 0x80, NUL) is refused;
//  * a wildcard pattern "*.example.com" matches exactly one more label: "a.example.com",
//    not "example.com" nor "a.b.example.com"; its base needs at least two labels
//    ("*.com" is refused as too broad);
//  * selection: the exact name, then the wildcard, then the default (when there is one),
//    else none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"

namespace ringproxy::tls {

inline constexpr size_t kHostNameMaxBytes = 253;
inline constexpr size_t kHostLabelMaxBytes = 63;

enum class HostNameError : uint8_t {
  kOk,
  kEmpty,
  kTooLong,
  kEmptyLabel,
  kLabelTooLong,
  kBadCharacter,
  kWildcardTooBroad,
};
std::string_view HostNameErrorText(HostNameError error);

// A normalised host name in fixed storage (no allocation on the handshake path).
class HostName {
 public:
  std::string_view view() const { return std::string_view(bytes_, size_); }

 private:
  friend HostNameError NormalizeHostName(std::string_view in, HostName* out);
  char bytes_[kHostNameMaxBytes];
  uint8_t size_ = 0;
};

// Lowers case, strips one trailing dot, checks the rules above. `out` is written only
// on kOk. Idempotent: a normalised name normalises to itself.
[[nodiscard]] HostNameError NormalizeHostName(std::string_view in, HostName* out);

// A configured name: a host name or "*." followed by one. `*out` gets the normalised
// pattern ("*.example.com"); `*wildcard` says which kind it is.
[[nodiscard]] HostNameError NormalizeNamePattern(std::string_view in, std::string* out,
                                                 bool* wildcard);

// Names to values (the caller's entry numbers). Built once, then read-only: safe to
// read from every thread.
class ServerNameIndex {
 public:
  enum class AddResult : uint8_t { kAdded, kDuplicate, kInvalid };
  // `pattern` as NormalizeNamePattern accepts it (normalised here again).
  AddResult Add(std::string_view pattern, uint32_t value);

  enum class Kind : uint8_t { kExact, kWildcard, kDefault, kNone };
  struct Selection {
    Kind kind = Kind::kNone;
    uint32_t value = 0;  // meaningful for kExact and kWildcard
  };
  // `host` must be normalised (NormalizeHostName); empty means "no name was sent".
  Selection Select(std::string_view host, bool has_default) const;

  size_t size() const { return exact_.size() + wildcard_.size(); }

 private:
  absl::flat_hash_map<std::string, uint32_t> exact_;
  // Keyed by the base: "*.example.com" is stored as "example.com".
  absl::flat_hash_map<std::string, uint32_t> wildcard_;
};

}  // namespace ringproxy::tls
