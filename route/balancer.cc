#include "route/balancer.h"

#include <algorithm>

namespace ringproxy {

UpstreamBalancer::UpstreamBalancer(const UpstreamGroupConfig& config, uint32_t seed)
    : config_(&config), state_(config.servers.size()), next_(seed) {
  // Spread shards' starting points: shard k begins as if k picks had been made.
  for (uint32_t i = 0; i < seed % std::max<size_t>(1, state_.size()); ++i) {
    (void)PickRoundRobin(0);
  }
}

bool UpstreamBalancer::IsDown(uint32_t index, int64_t now_ns) const {
  return state_[index].down_until_ns > now_ns;
}

int UpstreamBalancer::PickRoundRobin(int64_t now_ns) {
  int64_t total = 0;
  int best = -1;
  for (size_t i = 0; i < state_.size(); ++i) {
    if (IsDown(static_cast<uint32_t>(i), now_ns)) continue;
    const int64_t weight = config_->servers[i].weight;
    state_[i].current_weight += weight;
    total += weight;
    if (best < 0 || state_[i].current_weight > state_[static_cast<size_t>(best)].current_weight) {
      best = static_cast<int>(i);
    }
  }
  if (best >= 0) state_[static_cast<size_t>(best)].current_weight -= total;
  return best;
}

int UpstreamBalancer::PickLeastConn(int64_t now_ns) {
  // Fewest connections per unit of weight (compared as active_a * w_b < active_b * w_a);
  // ties go round-robin from a rotating start.
  const size_t n = state_.size();
  const size_t start = next_++ % n;
  int best = -1;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (start + k) % n;
    if (IsDown(static_cast<uint32_t>(i), now_ns)) continue;
    if (best < 0) {
      best = static_cast<int>(i);
      continue;
    }
    const auto b = static_cast<size_t>(best);
    const uint64_t lhs =
        uint64_t{state_[i].active} * static_cast<uint64_t>(config_->servers[b].weight);
    const uint64_t rhs =
        uint64_t{state_[b].active} * static_cast<uint64_t>(config_->servers[i].weight);
    if (lhs < rhs) best = static_cast<int>(i);
  }
  return best;
}

int UpstreamBalancer::PickIpHash(const SocketAddress& client, int64_t now_ns) {
  const size_t n = state_.size();
  uint32_t hash = 89;
  for (int tries = 0; tries < 20; ++tries) {
    for (uint8_t b : client.host_bytes()) hash = (hash * 113 + b) % 6271;
    const uint32_t index = hash % static_cast<uint32_t>(n);
    if (!IsDown(index, now_ns)) return static_cast<int>(index);
    if (n == 1) break;
  }
  return PickLeastConn(now_ns);
}

size_t UpstreamBalancer::Plan(const SocketAddress& client, int64_t now_ns,
                              std::span<uint32_t> out) {
  const size_t n = state_.size();
  if (n == 0 || out.empty()) return 0;
  int pick = -1;
  switch (config_->balance) {
    case Balance::kRoundRobin:
      pick = PickRoundRobin(now_ns);
      break;
    case Balance::kLeastConn:
      pick = PickLeastConn(now_ns);
      break;
    case Balance::kIpHash:
      pick = PickIpHash(client, now_ns);
      break;
  }
  size_t count = 0;
  if (pick >= 0) {
    // The pick, then the other live servers in ring order after it, for failover.
    for (size_t i = 0; i < n && count < out.size(); ++i) {
      auto index = static_cast<uint32_t>((static_cast<size_t>(pick) + i) % n);
      if (!IsDown(index, now_ns)) out[count++] = index;
    }
    return count;
  }
  // Everything is marked down: marks can be stale, so try them all rather than refuse
  // without trying.
  const size_t start = next_++ % n;
  for (size_t i = 0; i < n && count < out.size(); ++i) {
    out[count++] = static_cast<uint32_t>((start + i) % n);
  }
  return count;
}

void UpstreamBalancer::ReportFailure(uint32_t index, int64_t now_ns) {
  ServerState& s = state_[index];
  ++s.consecutive_failures;
  if (config_->max_fails > 0 && s.consecutive_failures >= config_->max_fails) {
    s.down_until_ns = now_ns + config_->fail_timeout_ms * 1'000'000;
  }
}

void UpstreamBalancer::ReportSuccess(uint32_t index) {
  state_[index].consecutive_failures = 0;
  state_[index].down_until_ns = 0;
}

}  // namespace ringproxy
