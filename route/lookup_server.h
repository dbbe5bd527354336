// The network side of the reference lookup service: an HTTP/1.x server on the
// project's runtime that answers lookup requests with Decide() (route/lookup_service.h).
// Knobs for tests and staging: added latency, a share of broken answers (HTTP 500,
// which a proxy must treat as an invalid response), HTTP/1.0-style one request per
// connection (as Zimbra's NLE is used), and a request log of one line per request.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/socket.h"
#include "core/task.h"
#include "route/lookup_service.h"

namespace ringproxy {

struct LookupServerOptions {
  SocketAddress listen;
  int64_t latency_ms = 0;
  double error_rate = 0;  // 0..1
  bool close_after_reply = false;
  int request_log_fd = -1;  // one line per request (write(2), O_APPEND)
  // The wait for a request's first byte, and then for its whole head: one deadline from
  // that byte, so a peer sending a byte now and then cannot hold a connection.
  int64_t idle_timeout_ms = 60000;
  // Open connections across all shards; beyond it a new one is closed at once.
  int64_t max_connections = 1024;
};

struct LookupServerStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors_injected{0};
  std::atomic<uint64_t> bad_requests{0};
  std::atomic<int64_t> connections{0};  // open now
  std::atomic<uint64_t> connections_refused{0};
};

// Serves on one shard until `stop` becomes true. Binds its own SO_REUSEPORT socket,
// so several shards can serve one address.
Task<void> ServeLookups(const LookupServerOptions* options,
                        std::shared_ptr<const Directory> directory, LookupServerStats* stats,
                        const std::atomic<bool>* stop);

}  // namespace ringproxy
