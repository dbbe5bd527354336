// Which memcached server a key lives on.
//
//  kKetama  libmemcached's weighted ketama (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, the
//           classic ketama): per server floor(weight share x 160/4 x servers) x 4
//           points (single-precision arithmetic, as libmemcached computes it), 4
//           points per MD5 of "host:port-i" ("host-i" when the port is 11211), each a
//           little-endian word of the digest; a key hashes to the first 4 bytes of its
//           MD5 (little-endian) and goes to the first point >= that value, wrapping.
//           Servers in configuration order. Checked against Debian's libmemcached.
//  kZimbra  the Zimbra nginx fork: Jenkins one-at-a-time hash of the key in 64-bit
//           arithmetic (its ngx_uint_t on the 64-bit builds Zimbra ships), mod the
//           number of servers; a bad server's keys go to the next one in order.
//
// Both place a key as the caller gives it: a key too long for memcached is sent as its
// MD5 (memcache::NormalizeKey) but placed by the original, as the fork does.
//
// A server that is down is skipped: ketama walks on to the next point of a live
// server (the dead server's keys spread over the others; libmemcached's auto-eject
// places them the same way), zimbra probes the next index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/socket.h"

namespace ringproxy {

struct CacheServer {
  std::string text;  // "host:port" as configured
  std::string host;  // the host part, as written (it is part of the ketama point strings)
  uint16_t port = 11211;
  uint32_t weight = 1;
  SocketAddress address;
  bool operator==(const CacheServer&) const = default;
};

// A server from "IP:port" ("[v6]:port"), weight 1; the host part is kept as written.
absl::StatusOr<CacheServer> ParseCacheServer(std::string_view text);

enum class Distribution : uint8_t { kKetama, kZimbra };

// Jenkins one-at-a-time over the bytes (unsigned) with 64-bit words, as the Zimbra fork
// computes it on amd64: from the third byte on the high bits feed back through the
// right shifts, so this is not the 32-bit hash widened.
uint64_t OneAtATimeHash(std::string_view key);
// The first four bytes of MD5(key), little-endian: ketama's key hash.
uint32_t KetamaHash(std::string_view key);

class KeyPlacement {
 public:
  KeyPlacement(const std::vector<CacheServer>& servers, Distribution distribution);

  // The index of the server for `key` among those for which alive(index) is true, or -1.
  template <typename Alive>
  int Pick(std::string_view key, Alive alive) const;

  size_t points() const { return continuum_.size(); }

 private:
  struct Point {
    uint32_t value;
    uint32_t server;
  };
  Distribution distribution_;
  size_t servers_;
  std::vector<Point> continuum_;  // sorted by value, then server
  size_t LowerBound(uint32_t hash) const;
};

template <typename Alive>
int KeyPlacement::Pick(std::string_view key, Alive alive) const {
  if (servers_ == 0) return -1;
  if (distribution_ == Distribution::kZimbra) {
    const size_t first = OneAtATimeHash(key) % servers_;
    for (size_t i = 0; i < servers_; ++i) {
      size_t index = (first + i) % servers_;
      if (alive(index)) return static_cast<int>(index);
    }
    return -1;
  }
  if (servers_ == 1) return alive(0) ? 0 : -1;  // libmemcached skips the hash then
  const size_t start = LowerBound(KetamaHash(key));
  for (size_t i = 0; i < continuum_.size(); ++i) {
    const Point& p = continuum_[(start + i) % continuum_.size()];
    if (alive(p.server)) return static_cast<int>(p.server);
  }
  return -1;
}

}  // namespace ringproxy
