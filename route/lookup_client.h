// The client of the route lookup service (Zimbra's NLE, or tools/lookupd), one per
// shard. Handler election as Zimbra's proxy does it: round-robin over the handlers,
// each lookup trying each handler at most once; a handler whose connect fails is
// skipped for `retry_interval_ms`; a connect failure or a write timeout fails over to
// the next handler; a read timeout or a broken response fails the lookup (no retry,
// the request may have been processed). Unlike Zimbra's nginx, connections are kept
// (HTTP/1.1 keep-alive, a small idle pool per handler) when the service allows it; a
// kept one that fails to send, or ends or is reset before any answer, is retried once
// on a fresh connection (the service dropped it idle; a lookup only reads).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/socket.h"
#include "core/sync.h"
#include "core/task.h"
#include "route/lookup_codec.h"

namespace ringproxy {

struct LookupHandler {
  std::string text;  // as configured, for logs
  SocketAddress address;
  std::string path = std::string(lookup::kDefaultPath);
  bool operator==(const LookupHandler&) const = default;
};

struct LookupOptions {
  std::vector<LookupHandler> handlers;
  int64_t connect_timeout_ms = 5000;
  int64_t timeout_ms = 15000;         // reading the response (and writing the request)
  int64_t retry_interval_ms = 60000;  // a handler that refused a connect is skipped this long
  bool keepalive = true;
  size_t max_idle_per_handler = 16;
  // A kept connection idle longer is closed rather than reused: a firewall or NAT that
  // dropped it silently would cost a lookup its whole timeout (a reset or a close is
  // noticed at once and retried on a fresh connection).
  int64_t max_idle_ms = 30000;
  bool operator==(const LookupOptions&) const = default;
};

// What to look up; owns its strings (it lives across waits).
struct LookupQuery {
  std::string method = "username";
  std::string user;
  bool escape_user = true;
  std::string protocol;
  int login_attempt = 1;
  std::string client_ip;
  std::string proxy_ip;
  std::string proxy_host;
  bool zimbra_admin = false;
  bool zimbra_zx = false;
  std::string auth_id;
  std::string admin_user;
  std::string admin_pass;
};

enum class LookupStatus : uint8_t {
  kOk,
  kLoginFailed,   // the service said no (Auth-Status text, Auth-Wait)
  kInvalidRoute,  // OK without a usable server/port
  kUnavailable,   // no handler reachable, timeout, or an invalid response
  // The query holds a value the protocol cannot carry (a control character, see
  // lookup::RequestError): nothing was sent, no handler was tried. The input is at
  // fault, not the service: asking again with the same query fails the same way.
  kInvalidRequest,
};

std::string_view LookupStatusName(LookupStatus s);

struct LookupResult {
  LookupStatus status = LookupStatus::kUnavailable;
  std::string reason;  // Auth-Status text, or what went wrong
  std::string server;
  uint16_t port = 0;
  std::string user;  // Auth-User, unescaped: the canonical account
  bool cache_alias = false;
  int wait_s = -1;
  std::string auth_id;
  std::string auth_pass;
  int handler = -1;
};

struct LookupStats {
  uint64_t lookups = 0;
  uint64_t connects = 0;
  uint64_t reused = 0;
  uint64_t failovers = 0;
  uint64_t handler_failures = 0;
  uint64_t unavailable = 0;
  uint64_t invalid_requests = 0;  // refused before sending (kInvalidRequest)
};

class LookupClient {
 public:
  explicit LookupClient(LookupOptions options);
  ~LookupClient();
  LookupClient(const LookupClient&) = delete;
  LookupClient& operator=(const LookupClient&) = delete;

  Task<LookupResult> Lookup(LookupQuery query);
  // Closes idle connections; call when no lookup is in flight.
  void Close();
  // Shutdown: ends the lookups in flight now (their connections are cancelled; they
  // answer kUnavailable) and every later one at once.
  void Abort();

  const LookupStats& stats() const { return stats_; }
  bool HandlerSkipped(size_t index) const;

 private:
  struct Handler {
    LookupHandler config;
    int64_t failed_at_ns = 0;  // 0: never failed (or the skip has expired)
    struct Idle {
      UniqueFd fd;
      int64_t since_ns = 0;
    };
    std::vector<Idle> idle;  // oldest first
  };
  enum class Attempt : uint8_t { kDone, kFailover, kRetryFresh };

  Task<Attempt> Try(Handler* h, int index, const std::string* request, bool reused_ok,
                    LookupResult* out);

  LookupOptions options_;
  std::vector<std::unique_ptr<Handler>> handlers_;
  size_t next_ = 0;
  LookupStats stats_;
  std::vector<int> active_fds_;  // connections of the lookups in flight, for Abort()
  bool aborted_ = false;
};

}  // namespace ringproxy
