#include "route/balancer.h"

#include <algorithm>

namespace ringproxy {

namespace {

// The same servers, judged the same way (a mark made under other max_fails or
// fail_timeout_ms rules would outlive them).
bool SameServers(const UpstreamGroupConfig& a, const UpstreamGroupConfig& b) {
  return a.name == b.name && a.max_fails == b.max_fails && a.fail_timeout_ms == b.fail_timeout_ms &&
         std::equal(a.servers.begin(), a.servers.end(), b.servers.begin(), b.servers.end(),
                    [](const UpstreamServerConfig& x, const UpstreamServerConfig& y) {
                      return x.address == y.address && x.id == y.id;
                    });
}

}  // namespace

UpstreamBalancer::UpstreamBalancer(const UpstreamGroupConfig& config, uint32_t seed,
                                   const UpstreamBalancer* previous)
    : config_(&config) {
  if (previous != nullptr && SameServers(previous->config(), config)) {
    shared_ = previous->shared_;
    return;
  }
  shared_ = std::make_shared<State>();
  shared_->servers.resize(config.servers.size());
  shared_->next = seed;
  // Spread shards' starting points: shard k begins as if k picks had been made.
  for (uint32_t i = 0; i < seed % std::max<size_t>(1, shared_->servers.size()); ++i) {
    (void)PickRoundRobin(0);
  }
}

bool UpstreamBalancer::IsDown(uint32_t index, int64_t now_ns) const {
  return shared_->servers[index].down_until_ns > now_ns;
}

int UpstreamBalancer::PickRoundRobin(int64_t now_ns) {
  int64_t total = 0;
  int best = -1;
  for (size_t i = 0; i < shared_->servers.size(); ++i) {
    if (IsDown(static_cast<uint32_t>(i), now_ns)) continue;
    const int64_t weight = config_->servers[i].weight;
    shared_->servers[i].current_weight += weight;
    total += weight;
    if (best < 0 || shared_->servers[i].current_weight >
                        shared_->servers[static_cast<size_t>(best)].current_weight) {
      best = static_cast<int>(i);
    }
  }
  if (best >= 0) shared_->servers[static_cast<size_t>(best)].current_weight -= total;
  return best;
}

int UpstreamBalancer::PickLeastConn(int64_t now_ns) {
  // Fewest connections per unit of weight (compared as active_a * w_b < active_b * w_a);
  // ties by smooth weighted round-robin among the tied, so weights count when nothing
  // overlaps (every server at 0).
  const auto load_cmp = [&](size_t a, size_t b) {
    const uint64_t lhs =
        uint64_t{shared_->servers[a].active} * static_cast<uint64_t>(config_->servers[b].weight);
    const uint64_t rhs =
        uint64_t{shared_->servers[b].active} * static_cast<uint64_t>(config_->servers[a].weight);
    return lhs < rhs ? -1 : lhs > rhs ? 1 : 0;
  };
  int least = -1;
  for (size_t i = 0; i < shared_->servers.size(); ++i) {
    if (IsDown(static_cast<uint32_t>(i), now_ns)) continue;
    if (least < 0 || load_cmp(i, static_cast<size_t>(least)) < 0) least = static_cast<int>(i);
  }
  if (least < 0) return -1;
  int64_t total = 0;
  int best = -1;
  for (size_t i = 0; i < shared_->servers.size(); ++i) {
    if (IsDown(static_cast<uint32_t>(i), now_ns) || load_cmp(i, static_cast<size_t>(least)) != 0) {
      continue;
    }
    shared_->servers[i].current_weight += config_->servers[i].weight;
    total += config_->servers[i].weight;
    if (best < 0 || shared_->servers[i].current_weight >
                        shared_->servers[static_cast<size_t>(best)].current_weight) {
      best = static_cast<int>(i);
    }
  }
  shared_->servers[static_cast<size_t>(best)].current_weight -= total;
  return best;
}

namespace {

bool Listed(std::span<const uint32_t> listed, uint32_t index) {
  return std::find(listed.begin(), listed.end(), index) != listed.end();
}

}  // namespace

size_t UpstreamBalancer::IpHashChain(const SocketAddress& client, int64_t now_ns,
                                     std::span<uint32_t> out) const {
  const auto n = static_cast<uint32_t>(shared_->servers.size());
  size_t count = 0;
  uint32_t hash = 89;
  for (int tries = 0; tries < 20 && count < out.size(); ++tries) {
    for (uint8_t b : client.host_bytes()) hash = (hash * 113 + b) % 6271;
    const uint32_t index = hash % n;
    if (!IsDown(index, now_ns) && !Listed(out.first(count), index)) out[count++] = index;
  }
  return count;
}

size_t UpstreamBalancer::AppendLive(uint32_t from, int64_t now_ns, size_t count,
                                    std::span<uint32_t> out) const {
  const size_t n = shared_->servers.size();
  const size_t listed = count;
  for (size_t i = 0; i < n && count < out.size(); ++i) {
    const auto index = static_cast<uint32_t>((from + i) % n);
    if (!IsDown(index, now_ns) && !Listed(out.first(listed), index)) out[count++] = index;
  }
  return count;
}

size_t UpstreamBalancer::Plan(const SocketAddress& client, int64_t now_ns,
                              std::span<uint32_t> out) {
  const size_t n = shared_->servers.size();
  if (n == 0 || out.empty()) return 0;
  int pick = -1;
  size_t count = 0;
  switch (config_->balance) {
    case Balance::kRoundRobin:
      pick = PickRoundRobin(now_ns);
      break;
    case Balance::kLeastConn:
      pick = PickLeastConn(now_ns);
      break;
    case Balance::kIpHash:
      // Failover follows the hash chain too: where Zimbra's proxy sends the client next.
      count = IpHashChain(client, now_ns, out);
      pick = count > 0 ? static_cast<int>(out[0]) : PickLeastConn(now_ns);
      break;
  }
  if (pick >= 0) {
    // The pick, then the other live servers in ring order after it, for failover.
    if (count == 0) out[count++] = static_cast<uint32_t>(pick);
    return AppendLive(static_cast<uint32_t>(pick), now_ns, count, out);
  }
  // Everything is marked down: marks can be stale, so try them all rather than refuse
  // without trying.
  const size_t start = shared_->next++ % n;
  for (size_t i = 0; i < n && count < out.size(); ++i) {
    out[count++] = static_cast<uint32_t>((start + i) % n);
  }
  return count;
}

size_t UpstreamBalancer::PlanFrom(uint32_t first, int64_t now_ns, std::span<uint32_t> out) const {
  if (out.empty() || first >= shared_->servers.size()) return 0;
  out[0] = first;
  return AppendLive(first, now_ns, 1, out);
}

void UpstreamBalancer::ReportFailure(uint32_t index, int64_t now_ns) {
  ServerState& s = shared_->servers[index];
  // Capped: a group that stays down would otherwise count past INT_MAX.
  if (s.consecutive_failures < std::max(config_->max_fails, 1)) ++s.consecutive_failures;
  if (config_->max_fails > 0 && s.consecutive_failures >= config_->max_fails) {
    s.down_until_ns = now_ns + config_->fail_timeout_ms * 1'000'000;
  }
}

void UpstreamBalancer::ReportSuccess(uint32_t index) {
  shared_->servers[index].consecutive_failures = 0;
  shared_->servers[index].down_until_ns = 0;
}

}  // namespace ringproxy
