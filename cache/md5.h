// MD5 (RFC 1321). Not for security: memcached key placement (ketama) and Zimbra's
// rule for keys longer than 250 bytes both are defined in terms of MD5.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringproxy {

using Md5Digest = std::array<uint8_t, 16>;

Md5Digest Md5(std::string_view data);
// Lowercase hex of the digest (32 characters).
std::string Md5Hex(std::string_view data);

}  // namespace ringproxy
