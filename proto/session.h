// What every session shares with its shard: the services it borrows (pipes,
// metrics, the session list used by drain) and the per-shard config snapshot it
// began with. A session is a coroutine; SessionBase is the small object in its frame
// that lets the shard stop it.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/buffer_ring.h"
#include "core/config.h"
#include "core/counters.h"
#include "core/idle_sweeper.h"
#include "core/intrusive_list.h"
#include "core/pipe_pool.h"
#include "core/pump.h"
#include "core/sync.h"
#include "route/balancer.h"
#include "route/host_resolver.h"
#include "route/stack.h"
#include "tls/client_context.h"
#include "tls/server_context.h"

namespace ringproxy {

// Counters of one shard; summed across shards when reported.
#define RINGPROXY_SHARD_COUNTERS(X)                                                           \
  X(connections_accepted, "client connections accepted")                                      \
  X(accept_errors, "accept failures (descriptor or memory limits)")                           \
  X(upstream_connects, "upstream connections established")                                    \
  X(upstream_connect_failures, "upstream connect attempts that failed")                       \
  X(sessions_no_upstream, "sessions closed because no upstream could be reached")             \
  X(bytes_to_upstream, "bytes relayed client -> upstream (not HTTP exchanges)")               \
  X(bytes_to_downstream, "bytes relayed upstream -> client (not HTTP exchanges)")             \
  X(relay_idle_timeouts, "relays closed by the idle timeout")                                 \
  X(relay_errors, "relays ended by a socket error on either side")                            \
  X(sessions_stopped, "sessions closed by the drain deadline or shutdown")                    \
  X(tls_handshakes, "client TLS handshakes completed")                                        \
  X(tls_resumed, "client TLS handshakes that resumed a session (ticket)")                     \
  X(tls_handshake_failures, "client TLS handshakes that failed or timed out")                 \
  X(upstream_tls_failures, "upstream TLS handshakes that failed or timed out")                \
  X(mail_logins, "mail logins the upstream accepted")                                         \
  X(mail_login_failures, "mail logins refused (lookup or upstream)")                          \
  X(mail_throttled, "mail sessions refused by the IP or user throttle")                       \
  X(mail_internal_errors, "mail logins ended by a lookup, connect or upstream error")         \
  X(http_requests, "HTTP requests read from clients")                                         \
  X(http_bad_requests, "HTTP requests refused as malformed (400, 408, 414, 431, 501, 505)")   \
  X(http_refused, "HTTP requests refused by a check (400, 403, 404, 405, 413, 417)")          \
  X(http_upstream_errors, "HTTP requests answered 502/503/504 or cut by an upstream failure") \
  X(http_upstream_reused, "HTTP requests sent on a pooled upstream connection")               \
  X(reactor_enters, "io_uring_enter calls of the shard loops (each submits and reaps)")       \
  X(reactor_coalesced_waits, "sleeps that waited for a batch of completions (coalesce_us)")

struct ShardMetrics {
#define RINGPROXY_DECLARE_COUNTER(name, help) Counter name;
  RINGPROXY_SHARD_COUNTERS(RINGPROXY_DECLARE_COUNTER)
#undef RINGPROXY_DECLARE_COUNTER
  Gauge connections_active;
};

// A finished relay in the shard's counters.
inline void CountPumpEnd(ShardMetrics& metrics, const PumpResult& result) {
  metrics.bytes_to_upstream.Add(result.bytes_to_upstream);
  metrics.bytes_to_downstream.Add(result.bytes_to_downstream);
  switch (result.end) {
    case PumpEnd::kIdleTimeout:
      metrics.relay_idle_timeouts.Add();
      break;
    case PumpEnd::kDownstreamError:
    case PumpEnd::kUpstreamError:
      metrics.relay_errors.Add();
      break;
    case PumpEnd::kStopped:
      metrics.sessions_stopped.Add();
      break;
    case PumpEnd::kClosed:
      break;
  }
}

// A config generation as one shard sees it: the immutable config plus this shard's
// mutable per-generation state (balancers, TLS contexts). Reference-counted without
// atomics: only its shard touches it. Sessions hold the generation they began with,
// so a reload never pulls a context from under a handshake.
struct ShardSnapshot {
  // `previous`: the generation this one follows (may be null): its route stack is kept
  // when it serves this config too, and its balancers' state where a group's servers
  // are the same.
  ShardSnapshot(ConfigPtr c, uint32_t shard_id, const ShardSnapshot* previous);
  ~ShardSnapshot();
  ConfigPtr config;
  std::vector<UpstreamBalancer> balancers;
  // By listener / upstream index; null where the config has no TLS (or the shard
  // could not build the context: logged, and such sessions are refused).
  std::vector<std::unique_ptr<TlsServerShardContext>> tls_servers;
  std::vector<std::unique_ptr<TlsClientShardContext>> tls_clients;
  // By listener index: [listener.upstream_tls] (mail: TLS to each login's route).
  std::vector<std::unique_ptr<TlsClientShardContext>> listener_upstream_tls;
  // This generation's route stack (null without [lookup]), shared with the generations
  // before and after it whose route settings are the same; closed on the shard, in the
  // background under `retire_gate`, when the last session of the last of them ends.
  std::shared_ptr<RouteStack> routes;
  Gate* retire_gate = nullptr;
  // The shard's set of live generations (so that shutdown can abort their lookups).
  std::vector<ShardSnapshot*>* live = nullptr;
  uint64_t refs = 0;
};

class SnapshotRef {
 public:
  SnapshotRef() = default;
  explicit SnapshotRef(ShardSnapshot* s) : s_(s) {
    if (s_ != nullptr) ++s_->refs;
  }
  SnapshotRef(const SnapshotRef& o) : SnapshotRef(o.s_) {}
  SnapshotRef(SnapshotRef&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  SnapshotRef& operator=(SnapshotRef o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~SnapshotRef() {
    if (s_ != nullptr && --s_->refs == 0) delete s_;
  }
  ShardSnapshot* operator->() const { return s_; }
  ShardSnapshot* get() const { return s_; }

 private:
  ShardSnapshot* s_ = nullptr;
};

class SessionBase : public IntrusiveNode<SessionBase> {
 public:
  // Ends the session soon (drain deadline, shutdown): cancel its waits.
  virtual void Stop() = 0;
  // The shard begins to drain, or a reload removed the session's listener: a session
  // that is between requests may end now.
  virtual void Drain() {}

  // The listener the session came from (SessionRegistration sets it).
  const ListenerConfig* listener = nullptr;
  // A reload removed that listener: the session is stopped at this monotonic time
  // (runtime.drain_timeout_ms after the reload); 0 while the listener lives.
  int64_t stop_at_ns = 0;

 protected:
  ~SessionBase() = default;
};

class UpstreamPool;  // proto/http_pool.h

struct ShardServices {
  uint32_t shard_id = 0;
  PipePool* pipes = nullptr;
  BufferRing* buffers = nullptr;
  IdleSweeper* sweeper = nullptr;
  ShardMetrics* metrics = nullptr;
  IntrusiveList<SessionBase>* sessions = nullptr;
  HostResolver* resolver = nullptr;   // host names in routes
  UpstreamPool* http_pool = nullptr;  // idle HTTP upstream connections
  bool draining = false;              // sessions that start now are drained at once
  int64_t stop_at_ns = 0;             // and stopped then (a removed listener's backlog)
};

// Links a session into its shard's list for as long as it lives; one that starts while
// the shard drains (served from the backlog) is drained from the start.
class SessionRegistration {
 public:
  SessionRegistration(ShardServices* services, const ListenerConfig* listener, SessionBase* s)
      : list_(services->sessions), s_(s) {
    s_->listener = listener;
    s_->stop_at_ns = services->stop_at_ns;
    list_->PushBack(s_);
    if (services->draining) s_->Drain();
  }
  ~SessionRegistration() { list_->Remove(s_); }
  SessionRegistration(const SessionRegistration&) = delete;
  SessionRegistration& operator=(const SessionRegistration&) = delete;

 private:
  IntrusiveList<SessionBase>* list_;
  SessionBase* s_;
};

}  // namespace ringproxy
