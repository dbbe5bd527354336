// Upstream selection for one shard: round-robin or client-IP hash over a group's
// servers, with passive health (a server that fails `max_fails` connects in a row is
// skipped for `fail_timeout_ms`). State is per shard; shards do not share it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/config.h"
#include "core/socket.h"

namespace ringproxy {

class UpstreamBalancer {
 public:
  // `seed` spreads shards' round-robin starting points (use the shard id).
  UpstreamBalancer(const UpstreamGroupConfig& config, uint32_t seed);

  // The order in which to try servers for one connection: the balancer's pick first,
  // then the rest in ring order; servers marked down are left out unless all are
  // down (then all are tried). Returns how many indices were written to `out`.
  size_t Plan(const SocketAddress& client, int64_t now_ns, std::span<uint32_t> out);

  void ReportFailure(uint32_t index, int64_t now_ns);
  void ReportSuccess(uint32_t index);
  bool IsDown(uint32_t index, int64_t now_ns) const;

  const UpstreamGroupConfig& config() const { return *config_; }
  size_t size() const { return state_.size(); }

 private:
  struct ServerState {
    int consecutive_failures = 0;
    int64_t down_until_ns = 0;
  };
  const UpstreamGroupConfig* config_;
  std::vector<ServerState> state_;
  uint64_t next_ = 0;
};

// FNV-1a over the client's address bytes (not the port): stable across shards,
// restarts and machines, so a client keeps its server wherever it lands.
uint64_t ClientAddressHash(const SocketAddress& client);

}  // namespace ringproxy
