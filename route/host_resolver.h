// Host names in routes (newer lookup services answer a name, not an IP), resolved
// without blocking the reactor: getaddrinfo runs on a short-lived thread whose answer
// comes back through an eventfd that the shard reads with a deadline. Answers are kept
// per shard for a TTL (failures for a shorter one). Concurrent misses of one name share
// its thread (a burst of logins to one mailbox host starts one), each waiter on its own
// eventfd, so a stopped session stops only its own wait; a cap on the threads alive per
// shard (counted until each thread ends, also after its waiters gave up) keeps a burst
// of misses of many names, or a resolver that hangs, from starting thousands.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/socket.h"
#include "core/task.h"
#include "route/upstream_connect.h"

namespace ringproxy {

// The blocking lookup a resolver thread runs: 0 and the addresses (any port), or an EAI_
// code. getaddrinfo unless set; tests set a slow one to hold threads.
using BlockingLookup = int (*)(const char* host, std::vector<SocketAddress>* out);

struct HostResolverOptions {
  int64_t ttl_ms = 60'000;
  int64_t negative_ttl_ms = 5'000;
  int64_t timeout_ms = 5'000;
  size_t max_entries = 4096;
  size_t max_in_flight = 64;  // resolver threads alive at once, per shard
  BlockingLookup lookup = nullptr;
};

struct HostAnswer {
  std::vector<SocketAddress> addresses;  // with the port asked for; empty on failure
  std::string error;                     // why there is none
  bool cached = false;
};

class HostResolver {
 public:
  struct Job;  // one name being resolved, shared with its thread (host_resolver.cc)

  explicit HostResolver(HostResolverOptions options = {})
      : options_(options), live_(std::make_shared<std::atomic<size_t>>(0)) {}
  HostResolver(const HostResolver&) = delete;
  HostResolver& operator=(const HostResolver&) = delete;

  // `control` lets the session stop the wait (its current_fd is the eventfd).
  Task<HostAnswer> Resolve(std::string host, uint16_t port, ConnectControl* control);

  uint64_t threads_started() const { return threads_started_; }
  size_t threads_alive() const { return live_->load(std::memory_order_acquire); }

 private:
  struct Entry {
    std::vector<SocketAddress> addresses;  // port 0
    std::string error;
    int64_t expires_ns = 0;
  };
  static HostAnswer Answer(const Entry& e, uint16_t port, bool cached);
  Entry EntryOf(const Job& job) const;
  void Remember(const std::string& host, Entry e);
  std::shared_ptr<Job> Start(const std::string& host, std::string* error);

  HostResolverOptions options_;
  absl::flat_hash_map<std::string, Entry> cache_;
  // Names being resolved now: a miss joins the thread already at work on its name.
  absl::flat_hash_map<std::string, std::shared_ptr<Job>> in_flight_;
  // Shared with the threads, which may outlive the resolver.
  std::shared_ptr<std::atomic<size_t>> live_;
  uint64_t threads_started_ = 0;
};

}  // namespace ringproxy
