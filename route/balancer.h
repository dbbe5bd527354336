// Upstream selection for one shard over a group's servers: smooth weighted round-robin
// (nginx's: a server of weight 3 gets 3 of every 4 picks against one of weight 1, spread
// out: a a b a), least connections (fewest live connections per unit of weight,
// ties by smooth weighted round-robin among them, as nginx's least_conn), or client-IP hash
// (Zimbra's: seed 89, then for each address byte hash = (hash * 113 + byte) % 6271, server = hash %
// n; a server that is down is skipped by hashing the address again, and after 20 tries least
// connections decides). Passive health: a server with `max_fails` failures in a row (connects; for
// HTTP also new connections dropped before an answer) is skipped for
// `fail_timeout_ms`. State is per shard; shards do not share it. A reload that keeps a
// group's servers keeps their state (down marks, live connections, turns).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/config.h"
#include "core/socket.h"

namespace ringproxy {

class UpstreamBalancer {
 public:
  // `seed` spreads shards' round-robin starting points (use the shard id). `previous`:
  // this group's balancer in the generation before (may be null); its state carries
  // over when the servers are the same, in the same order (and max_fails and
  // fail_timeout_ms too), so that a reload (a log rotation's SIGHUP) forgets no down
  // mark and no live connection of least_conn.
  UpstreamBalancer(const UpstreamGroupConfig& config, uint32_t seed,
                   const UpstreamBalancer* previous = nullptr);

  // The order in which to try servers for one connection: the balancer's pick first,
  // then the rest in ring order (ip_hash: first the servers the address hashes to next,
  // as Zimbra's proxy tries them); servers marked down are left out unless all are
  // down (then all are tried). Returns how many indices were written to `out`.
  size_t Plan(const SocketAddress& client, int64_t now_ns, std::span<uint32_t> out);
  // `first`, then the other live servers in ring order, with no balancing decision
  // made (a request pinned to its user's server takes no round-robin turn).
  size_t PlanFrom(uint32_t first, int64_t now_ns, std::span<uint32_t> out) const;

  void ReportFailure(uint32_t index, int64_t now_ns);
  void ReportSuccess(uint32_t index);
  bool IsDown(uint32_t index, int64_t now_ns) const;
  // A connection to the server begins / ends (least_conn counts them).
  void Acquire(uint32_t index) { ++shared_->servers[index].active; }
  void Release(uint32_t index) { --shared_->servers[index].active; }
  uint32_t active(uint32_t index) const { return shared_->servers[index].active; }

  const UpstreamGroupConfig& config() const { return *config_; }
  size_t size() const { return shared_->servers.size(); }

 private:
  struct ServerState {
    int consecutive_failures = 0;
    int64_t down_until_ns = 0;
    int64_t current_weight = 0;  // smooth weighted round-robin
    uint32_t active = 0;         // live connections from this shard
  };
  // Shared with the generations before and after whose servers are the same.
  struct State {
    std::vector<ServerState> servers;
    uint64_t next = 0;
  };
  // Each picks a live server (or -1 when all are down).
  int PickRoundRobin(int64_t now_ns);
  int PickLeastConn(int64_t now_ns);
  // The live servers of the address's hash chain, each once, in `out`.
  size_t IpHashChain(const SocketAddress& client, int64_t now_ns, std::span<uint32_t> out) const;
  // Appends the live servers not in out[0, count) in ring order after `from`.
  size_t AppendLive(uint32_t from, int64_t now_ns, size_t count, std::span<uint32_t> out) const;
  const UpstreamGroupConfig* config_;
  std::shared_ptr<State> shared_;
};

// One connection's hold on its server, for least_conn: released when it ends.
class ServerLease {
 public:
  ServerLease() = default;
  ServerLease(UpstreamBalancer* balancer, uint32_t index) : balancer_(balancer), index_(index) {
    balancer_->Acquire(index_);
  }
  ServerLease(ServerLease&& o) noexcept : balancer_(o.balancer_), index_(o.index_) {
    o.balancer_ = nullptr;
  }
  ServerLease& operator=(ServerLease&& o) noexcept {
    if (this != &o) {
      if (balancer_ != nullptr) balancer_->Release(index_);
      balancer_ = o.balancer_;
      index_ = o.index_;
      o.balancer_ = nullptr;
    }
    return *this;
  }
  ServerLease(const ServerLease&) = delete;
  ServerLease& operator=(const ServerLease&) = delete;
  ~ServerLease() {
    if (balancer_ != nullptr) balancer_->Release(index_);
  }

 private:
  UpstreamBalancer* balancer_ = nullptr;
  uint32_t index_ = 0;
};

}  // namespace ringproxy
