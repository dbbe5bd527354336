#include "route/balancer.h"

namespace ringproxy {

uint64_t ClientAddressHash(const SocketAddress& client) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : client.host_bytes()) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

UpstreamBalancer::UpstreamBalancer(const UpstreamGroupConfig& config, uint32_t seed)
    : config_(&config), state_(config.servers.size()), next_(seed) {}

bool UpstreamBalancer::IsDown(uint32_t index, int64_t now_ns) const {
  return state_[index].down_until_ns > now_ns;
}

size_t UpstreamBalancer::Plan(const SocketAddress& client, int64_t now_ns,
                              std::span<uint32_t> out) {
  const size_t n = state_.size();
  if (n == 0 || out.empty()) return 0;
  uint64_t start;
  if (config_->balance == Balance::kIpHash) {
    start = ClientAddressHash(client) % n;
  } else {
    start = next_++ % n;
  }
  size_t count = 0;
  for (size_t i = 0; i < n && count < out.size(); ++i) {
    auto index = static_cast<uint32_t>((start + i) % n);
    if (!IsDown(index, now_ns)) out[count++] = index;
  }
  if (count == 0) {
    // Everything is marked down: marks can be stale, so try them all rather than
    // refuse without trying.
    for (size_t i = 0; i < n && count < out.size(); ++i) {
      out[count++] = static_cast<uint32_t>((start + i) % n);
    }
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
