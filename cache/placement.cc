#include "cache/placement.h"

#include <algorithm>

#include "cache/md5.h"
#include "fmt/format.h"

namespace ringproxy {

absl::StatusOr<CacheServer> ParseCacheServer(std::string_view text) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse(text, 1);
  if (!address.ok()) return address.status();
  CacheServer s;
  s.text = std::string(text);
  s.host = std::string(text.substr(0, text.rfind(':')));
  s.port = address->port();
  s.address = *address;
  return s;
}

uint64_t OneAtATimeHash(std::string_view key) {
  uint64_t h = 0;
  for (char c : key) {
    h += static_cast<uint8_t>(c);
    h += h << 10;
    h ^= h >> 6;
  }
  h += h << 3;
  h ^= h >> 11;
  h += h << 15;
  return h;
}

uint32_t KetamaHash(std::string_view key) {
  Md5Digest d = Md5(key);
  return static_cast<uint32_t>(d[0]) | static_cast<uint32_t>(d[1]) << 8 |
         static_cast<uint32_t>(d[2]) << 16 | static_cast<uint32_t>(d[3]) << 24;
}

KeyPlacement::KeyPlacement(const std::vector<CacheServer>& servers, Distribution distribution)
    : distribution_(distribution), servers_(servers.size()) {
  if (distribution != Distribution::kKetama || servers.size() < 2) return;
  uint32_t total_weight = 0;
  for (const CacheServer& s : servers) total_weight += s.weight;
  const auto live = static_cast<float>(servers.size());
  for (size_t i = 0; i < servers.size(); ++i) {
    const CacheServer& s = servers[i];
    // libmemcached computes this in float; the rounding decides the point count for
    // some server counts (e.g. 25 servers of equal weight get 156 points, not 160).
    const float pct = static_cast<float>(s.weight) / static_cast<float>(total_weight);
    const auto per_server =
        static_cast<uint32_t>(static_cast<float>(pct * 160.0f / 4.0f * live + 0.0000000001f)) * 4;
    for (uint32_t j = 0; j < per_server / 4; ++j) {
      std::string name = s.port == 11211 ? fmt::format("{}-{}", s.host, j)
                                         : fmt::format("{}:{}-{}", s.host, s.port, j);
      Md5Digest d = Md5(name);
      for (int k = 0; k < 4; ++k) {
        uint32_t v = static_cast<uint32_t>(d[k * 4]) | static_cast<uint32_t>(d[k * 4 + 1]) << 8 |
                     static_cast<uint32_t>(d[k * 4 + 2]) << 16 |
                     static_cast<uint32_t>(d[k * 4 + 3]) << 24;
        continuum_.push_back({v, static_cast<uint32_t>(i)});
      }
    }
  }
  std::sort(continuum_.begin(), continuum_.end(), [](const Point& a, const Point& b) {
    return a.value != b.value ? a.value < b.value : a.server < b.server;
  });
}

size_t KeyPlacement::LowerBound(uint32_t hash) const {
  auto it = std::lower_bound(continuum_.begin(), continuum_.end(), hash,
                             [](const Point& p, uint32_t h) { return p.value < h; });
  return it == continuum_.end() ? 0 : static_cast<size_t>(it - continuum_.begin());
}

}  // namespace ringproxy
