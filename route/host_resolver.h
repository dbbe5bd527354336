// Host names in routes (newer lookup services answer a name, not an IP), resolved
// without blocking the reactor: getaddrinfo runs on a short-lived thread whose answer
// comes back through an eventfd that the shard reads with a deadline. Answers are kept
// per shard for a TTL (failures for a shorter one). Each miss has its own thread and
// eventfd, so a stopped session stops only its own wait; a cap on the threads in flight
// per shard keeps a burst of misses from starting thousands.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/socket.h"
#include "core/task.h"
#include "route/upstream_connect.h"

namespace ringproxy {

struct HostResolverOptions {
  int64_t ttl_ms = 60'000;
  int64_t negative_ttl_ms = 5'000;
  int64_t timeout_ms = 5'000;
  size_t max_entries = 4096;
  size_t max_in_flight = 64;
};

struct HostAnswer {
  std::vector<SocketAddress> addresses;  // with the port asked for; empty on failure
  std::string error;                     // why there is none
  bool cached = false;
};

class HostResolver {
 public:
  explicit HostResolver(HostResolverOptions options = {}) : options_(options) {}
  HostResolver(const HostResolver&) = delete;
  HostResolver& operator=(const HostResolver&) = delete;

  // `control` lets the session stop the wait (its current_fd is the eventfd).
  Task<HostAnswer> Resolve(std::string host, uint16_t port, ConnectControl* control);

  uint64_t threads_started() const { return threads_started_; }

 private:
  struct Entry {
    std::vector<SocketAddress> addresses;  // port 0
    std::string error;
    int64_t expires_ns = 0;
  };
  static HostAnswer Answer(const Entry& e, uint16_t port, bool cached);
  void Remember(const std::string& host, Entry e);

  HostResolverOptions options_;
  absl::flat_hash_map<std::string, Entry> cache_;
  size_t in_flight_ = 0;
  uint64_t threads_started_ = 0;
};

}  // namespace ringproxy
