// The configuration snapshot: plain immutable data, loaded from TOML by LoadConfig().
// A running server holds one snapshot per generation; reload builds a new one and
// each shard swaps it in at a quiet point. Connections keep the snapshot they began
// with. Every key, default and meaning is listed in docs/configuration.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/log.h"
#include "core/socket.h"

namespace ringproxy {

enum class Protocol { kTcp };
enum class Balance { kRoundRobin, kIpHash };
// How a listener's pump moves bytes between plain sockets (core/pump.h): splice,
// ring copy, or by size.
enum class RelayMode : uint8_t { kAuto, kCopy, kSplice };

std::string_view ProtocolName(Protocol p);
std::string_view BalanceName(Balance b);
std::string_view RelayModeName(RelayMode mode);
bool ParseRelayMode(std::string_view text, RelayMode* out);

struct RuntimeConfig {
  int shards = 0;         // 0: one per CPU in `cpus`
  std::vector<int> cpus;  // empty: every CPU the process may use
  int ring_entries = 1024;
  int buffer_count = 1024;
  int buffer_size = 16384;
  int pipe_size = 262144;
  int pipe_pool_max = 64;
  int max_connections_per_shard = 50000;
  int64_t drain_timeout_ms = 30000;

  bool operator==(const RuntimeConfig&) const = default;
};

struct LogConfig {
  std::string file;  // empty: standard error
  log::Level level = log::Level::kInfo;
  bool access = true;
};

struct UpstreamServerConfig {
  std::string text;  // as written, for logs
  SocketAddress address;
};

struct UpstreamGroupConfig {
  std::string name;
  Balance balance = Balance::kRoundRobin;
  std::vector<UpstreamServerConfig> servers;
  int64_t connect_timeout_ms = 5000;
  int max_fails = 1;
  int64_t fail_timeout_ms = 10000;
};

struct ListenerConfig {
  std::string name;
  Protocol protocol = Protocol::kTcp;
  std::string listen_text;
  SocketAddress address;
  std::string upstream;
  int upstream_index = -1;  // into Config::upstreams
  int64_t idle_timeout_ms = 600000;
  int64_t send_timeout_ms = 60000;  // a send that makes no progress this long fails
  int backlog = 4096;
  int send_buffer = 0;  // SO_SNDBUF of client sockets; 0: the kernel's autotuning
  RelayMode relay = RelayMode::kAuto;
};

struct Config {
  std::string path;
  RuntimeConfig runtime;
  LogConfig log;
  std::vector<UpstreamGroupConfig> upstreams;
  std::vector<ListenerConfig> listeners;

  const UpstreamGroupConfig& upstream_of(const ListenerConfig& l) const {
    return upstreams[static_cast<size_t>(l.upstream_index)];
  }
};

using ConfigPtr = std::shared_ptr<const Config>;

// Parses and validates; errors name the file, line, key and what was expected.
absl::StatusOr<ConfigPtr> ParseConfig(std::string_view text, std::string_view path);
absl::StatusOr<ConfigPtr> LoadConfig(const std::string& path);

// The CPUs the shards run on: runtime.cpus (checked against what the process may
// use) or all allowed CPUs, trimmed or checked against runtime.shards.
absl::StatusOr<std::vector<int>> ResolveShardCpus(const RuntimeConfig& runtime);

}  // namespace ringproxy
