#include "proto/server.h"

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <future>

#include "absl/container/flat_hash_map.h"
#include "core/accept_stream.h"
#include "core/log.h"
#include "core/ops.h"
#include "core/status_util.h"
#include "core/sync.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "proto/http_pool.h"
#include "proto/protocols.h"
#include "tls/config.h"
#include "tls/library.h"

namespace ringproxy {

std::string ListenerKey(const ListenerConfig& l) {
  return fmt::format("{}|{}", l.protocol, l.address.ToString());
}

ShardSnapshot::ShardSnapshot(ConfigPtr c, uint32_t shard_id, const ShardSnapshot* previous)
    : config(std::move(c)) {
  balancers.reserve(config->upstreams.size());
  for (const auto& u : config->upstreams) {
    const UpstreamBalancer* before = nullptr;
    if (previous != nullptr) {
      for (const UpstreamBalancer& b : previous->balancers) {
        if (b.config().name == u.name) before = &b;
      }
    }
    balancers.emplace_back(u, shard_id, before);
  }
  tls_servers.resize(config->listeners.size());
  for (const ListenerConfig& l : config->listeners) {
    const auto* tls = l.extensions.Get<TlsListenerConfig>(kTlsTable);
    if (tls == nullptr) continue;
    auto shard = TlsServerShardContext::Create(tls->context);
    if (!shard.ok()) {
      RP_LOG(kError, "listener {}: TLS unavailable on shard {}: {}", l.name, shard_id,
             MessageOf(shard.status()));
      continue;
    }
    tls_servers[static_cast<size_t>(l.index)] = std::move(*shard);
  }
  tls_clients.resize(config->upstreams.size());
  for (const UpstreamGroupConfig& u : config->upstreams) {
    const auto* tls = u.extensions.Get<TlsUpstreamConfig>(kTlsTable);
    if (tls == nullptr) continue;
    auto shard = TlsClientShardContext::Create(tls->context);
    if (!shard.ok()) {
      RP_LOG(kError, "upstream {}: TLS unavailable on shard {}: {}", u.name, shard_id,
             MessageOf(shard.status()));
      continue;
    }
    tls_clients[static_cast<size_t>(u.index)] = std::move(*shard);
  }
  listener_upstream_tls.resize(config->listeners.size());
  for (const ListenerConfig& l : config->listeners) {
    const auto* tls = l.extensions.Get<TlsUpstreamConfig>(kUpstreamTlsTable);
    if (tls == nullptr) continue;
    auto shard = TlsClientShardContext::Create(tls->context);
    if (!shard.ok()) {
      RP_LOG(kError, "listener {}: upstream TLS unavailable on shard {}: {}", l.name, shard_id,
             MessageOf(shard.status()));
      continue;
    }
    listener_upstream_tls[static_cast<size_t>(l.index)] = std::move(*shard);
  }
  // A reload that leaves the route settings alone (a log rotation's SIGHUP, a new
  // certificate) keeps the stack: its memcached and lookup connections and its cache,
  // instead of one more set per generation that long sessions keep open.
  if (previous != nullptr && previous->routes != nullptr && previous->routes->Serves(*config)) {
    routes = previous->routes;
  } else {
    routes = RouteStack::Build(*config);
  }
}

namespace {

Task<void> CloseRoutes(std::shared_ptr<RouteStack> routes, Gate::Holder /*holder*/) {
  co_await routes->Close();
}

}  // namespace

ShardSnapshot::~ShardSnapshot() {
  if (live != nullptr) std::erase(*live, this);
  // Single-threaded: only this shard's snapshots hold the stack.
  if (routes != nullptr && routes.use_count() == 1) {
    RP_CHECK(retire_gate != nullptr);
    Spawn(CloseRoutes(std::move(routes), retire_gate->Enter()));
  }
}

namespace {

std::set<std::string> ListenerKeys(const Config& config) {
  std::set<std::string> keys;
  for (const ListenerConfig& l : config.listeners) keys.insert(ListenerKey(l));
  return keys;
}

// What a shard receives for a config generation: the config and the listening
// sockets it gains (key -> fd; the shard owns them once delivered).
struct ShardUpdate {
  ConfigPtr config;
  std::vector<std::pair<std::string, int>> new_listeners;
};

void CloseAll(const ShardUpdate& u) {
  for (const auto& [key, fd] : u.new_listeners) close(fd);
}

// A kept listener keeps its socket: what the config sets on it at bind is set again.
// Accepted sockets inherit SO_SNDBUF from it; listen() again resizes the backlog.
void ApplyListenerSocketOptions(const ListenerConfig& was, const ListenerConfig& now, int fd,
                                bool log_once) {
  if (was.backlog != now.backlog && listen(fd, now.backlog) != 0) {
    RP_LOG(kWarn, "listener {}: backlog {}: {}", now.name, now.backlog, strerror(errno));
  }
  if (was.send_buffer == now.send_buffer) return;
  if (now.send_buffer > 0) {
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &now.send_buffer, sizeof(now.send_buffer)) != 0) {
      RP_LOG(kWarn, "listener {}: send_buffer {}: {}", now.name, now.send_buffer, strerror(errno));
    }
  } else if (log_once) {
    RP_LOG(kWarn, "listener {}: send_buffer back to the kernel default applies after a restart",
           now.name);
  }
}

}  // namespace

// Runs on one shard's thread: its listeners, its sessions, its pools.
class ShardServer {
 public:
  ShardServer(Shard& shard, ShardMetrics* metrics, const RuntimeConfig& runtime,
              Router::PeerForget peer_forget)
      : shard_(shard), metrics_(metrics), runtime_(runtime), peer_forget_(std::move(peer_forget)) {}

  // A Forget on any shard: every route stack still in use here (sessions keep their
  // generation's) drops these per-core entries.
  void ForgetHere(const std::vector<std::string>& keys) {
    for (ShardSnapshot* s : live_snapshots_) {
      if (s->routes != nullptr) s->routes->router().ForgetHere(keys);
    }
  }
  ~ShardServer() { RP_CHECK(listeners_.empty() && sessions_.empty()); }

  absl::Status Init() {
    const unsigned flags = shard_.reactor().setup_flags();
    RP_LOG(kInfo, "shard {} on CPU {}: io_uring flags {:#x} (SINGLE_ISSUER {}, DEFER_TASKRUN {})",
           shard_.id(), shard_.cpu(), flags, (flags & IORING_SETUP_SINGLE_ISSUER) ? "on" : "off",
           (flags & IORING_SETUP_DEFER_TASKRUN) ? "on" : "off");
    pipes_ = std::make_unique<PipePool>(static_cast<size_t>(runtime_.pipe_size),
                                        static_cast<size_t>(runtime_.pipe_pool_max));
    absl::StatusOr<std::unique_ptr<BufferRing>> buffers = BufferRing::Create(
        shard_.reactor(), /*group_id=*/0, static_cast<uint32_t>(runtime_.buffer_count),
        static_cast<uint32_t>(runtime_.buffer_size), /*populate=*/true);
    if (!buffers.ok()) return buffers.status();
    buffers_ = std::move(*buffers);
    services_.shard_id = static_cast<uint32_t>(shard_.id());
    services_.pipes = pipes_.get();
    services_.buffers = buffers_.get();
    services_.sweeper = &sweeper_;
    services_.metrics = metrics_;
    services_.sessions = &sessions_;
    services_.resolver = &resolver_;
    http_pool_ = std::make_unique<UpstreamPool>(&sweeper_);
    services_.http_pool = http_pool_.get();
    return absl::OkStatus();
  }

  Task<void> Run(ShardUpdate initial) {
    shard_.reactor().MirrorStats(&metrics_->reactor_enters, &metrics_->reactor_coalesced_waits);
    if (shard_.id() == 0 && shard_.reactor().coalesce_unsupported()) {
      RP_LOG(kWarn,
             "runtime.coalesce_us: this kernel's io_uring has no min_wait (Linux 6.12); "
             "shards wake at every completion");
    }
    Spawn(RunSweeper(task_gate_.Enter()));
    Apply(std::move(initial));
    co_await finished_.Wait();
    co_await http_pool_->Close();
    sweeper_.Stop();
    co_await task_gate_.Wait();
    // The last generation's route stack closes once nothing holds it; resolutions that
    // stopped sessions left behind end now rather than at the lookup's deadline.
    for (ShardSnapshot* s : live_snapshots_) {
      if (s->routes != nullptr) s->routes->Abort();
    }
    current_ = SnapshotRef();
    // Again after each wake: the last holder to leave may be a task whose snapshot,
    // released after it, starts the stack's close (parameter order is the compiler's).
    while (retire_gate_.count() > 0) co_await retire_gate_.Wait();
  }

  void Apply(ShardUpdate update) {
    if (draining_) {
      CloseAll(update);
      return;
    }
    auto* made = new ShardSnapshot(update.config, services_.shard_id, current_.get());
    made->retire_gate = &retire_gate_;
    made->live = &live_snapshots_;
    if (made->routes != nullptr) made->routes->router().set_peer_forget(peer_forget_);
    live_snapshots_.push_back(made);
    SnapshotRef snapshot(made);
    current_ = snapshot;
    http_pool_->SetCurrent(made);
    absl::flat_hash_map<std::string, const ListenerConfig*> wanted;
    for (const ListenerConfig& l : update.config->listeners) wanted[ListenerKey(l)] = &l;
    for (auto& active : listeners_) {
      if (active->stopping) continue;
      auto it = wanted.find(active->key);
      if (it == wanted.end()) {
        RP_LOG(kInfo, "listener {} ({}) removed", active->config->name, active->key);
        StopListener(active.get());
        RemoveListenerSessions(active.get());
        continue;
      }
      ApplyListenerSocketOptions(*active->config, *it->second, active->fd.get(),
                                 services_.shard_id == 0);
      active->config = it->second;
      active->snapshot = snapshot;
      wanted.erase(it);
    }
    for (auto& [key, fd] : update.new_listeners) {
      auto it = wanted.find(key);
      if (it == wanted.end()) {
        close(fd);
        continue;
      }
      auto l = std::make_unique<ActiveListener>();
      l->key = key;
      l->fd.Reset(fd);
      l->config = it->second;
      l->snapshot = snapshot;
      ActiveListener* raw = l.get();
      listeners_.push_back(std::move(l));
      wanted.erase(it);
      Spawn(AcceptLoop(raw, listener_gate_.Enter()));
    }
  }

  void BeginDrain(int64_t timeout_ms) {
    if (draining_) return;
    draining_ = true;
    services_.draining = true;
    for (auto& l : listeners_) StopListener(l.get());
    sessions_.ForEach([](SessionBase* s) { s->Drain(); });
    Spawn(DrainTask(timeout_ms, task_gate_.Enter()));
  }

  void StopNow() {
    stop_now_ = true;
    BeginDrain(0);
    sessions_.ForEach([](SessionBase* s) { s->Stop(); });
  }

 private:
  struct ActiveListener {
    std::string key;
    UniqueFd fd;
    const ListenerConfig* config = nullptr;
    SnapshotRef snapshot;
    AcceptStream* stream = nullptr;
    bool stopping = false;
    int64_t stop_at_ns = 0;  // removed by a reload: its sessions' deadline
  };

  Task<void> RunSweeper(Gate::Holder /*holder*/) { co_await sweeper_.Run(); }

  // Sessions of a listener that a reload removed end between requests, and whatever
  // still runs (a tunnel, a long poll) is stopped after runtime.drain_timeout_ms, as at
  // SIGTERM. The deadline is the session's own: a later reload may add the address again.
  void RemoveListenerSessions(ActiveListener* l) {
    const int64_t at = MonotonicNowNs() + runtime_.drain_timeout_ms * 1'000'000;
    l->stop_at_ns = at;  // for the sessions of its backlog
    sessions_.ForEach([l, at](SessionBase* s) {
      if (s->listener == nullptr || s->stop_at_ns != 0 || ListenerKey(*s->listener) != l->key) {
        return;
      }
      s->stop_at_ns = at;
      s->Drain();
    });
    Spawn(StopRemovedListenerSessions(l->config->name, at, task_gate_.Enter()));
  }

  // A shard drain that begins first takes over with its own deadline.
  Task<void> StopRemovedListenerSessions(std::string name, int64_t at, Gate::Holder /*holder*/) {
    const Deadline deadline = Deadline::AtNs(at);
    while (!deadline.Passed() && !draining_) {
      co_await Sleep(Earliest(deadline, Deadline::AfterMs(50)));
    }
    // Its backlog is served once its accept loop has stopped, maybe after the deadline
    // (a short drain_timeout_ms): those sessions are due as well.
    auto still_accepting = [this, at] {
      return std::any_of(listeners_.begin(), listeners_.end(),
                         [at](const auto& l) { return l->stopping && l->stop_at_ns == at; });
    };
    while (still_accepting() && !draining_) co_await Sleep(Deadline::AfterMs(10));
    if (draining_) co_return;
    auto due = [at](const SessionBase* s) { return s->stop_at_ns != 0 && s->stop_at_ns <= at; };
    size_t count = 0;
    sessions_.ForEach([&](SessionBase* s) { count += due(s) ? 1 : 0; });
    if (count == 0) co_return;
    RP_LOG(kWarn, "listener {} removed: drain deadline reached: closing {} sessions", name, count);
    sessions_.ForEach([&](SessionBase* s) {
      if (due(s)) s->Stop();
    });
  }

  void StopListener(ActiveListener* l) {
    l->stopping = true;
    if (l->stream != nullptr) l->stream->RequestStop();
  }

  void StartSession(ActiveListener* l, int fd) {
    if (stop_now_) {
      close(fd);
      return;
    }
    metrics_->connections_accepted.Add();
    SocketAddress peer;
    *peer.mutable_size() = SocketAddress::capacity();
    if (getpeername(fd, peer.mutable_get(), peer.mutable_size()) != 0) {
      // The client is already gone (reset while queued): nothing to serve.
      close(fd);
      return;
    }
    peer.UnmapV4();  // a dual-stack listener's IPv4 clients as IPv4
    SessionEntry session = SessionFor(l->config->protocol);
    // A stopped listener serves its backlog once, drained from the start as in a shard
    // drain: the session registers (and reads the flag) before its first suspension.
    const bool draining = services_.draining;
    services_.draining = draining || l->stopping;
    services_.stop_at_ns = l->stop_at_ns;
    Spawn(session(&services_, l->snapshot, l->config, fd, peer, session_gate_.Enter()));
    services_.draining = draining;
    services_.stop_at_ns = 0;
  }

  bool Full() const {
    return session_gate_.count() >= static_cast<uint64_t>(runtime_.max_connections_per_shard);
  }

  // Full: new connections wait in the kernel's backlog (and one already accepted, in
  // the caller's hands) until a slot frees or the listener stops.
  Task<void> WaitForSlot(ActiveListener* l, AcceptStream* stream) {
    bool logged = false;
    while (Full() && !l->stopping) {
      stream->Pause();
      if (!logged) {
        RP_LOG(kWarn,
               "listener {}: runtime.max_connections_per_shard ({}) reached; "
               "pausing accept",
               l->config->name, runtime_.max_connections_per_shard);
        logged = true;
      }
      co_await Sleep(Deadline::AfterMs(20));
    }
  }

  Task<void> AcceptLoop(ActiveListener* l, Gate::Holder /*holder*/) {
    AcceptStream stream(l->fd.get());
    l->stream = &stream;
    while (!l->stopping) {
      if (Full()) {
        co_await WaitForSlot(l, &stream);
        continue;
      }
      IoResult r = co_await stream.Next();
      if (r.ok()) {
        // Another listener's sessions may have filled the shard while this accept was
        // armed: the connection waits for a slot too.
        if (Full()) co_await WaitForSlot(l, &stream);
        StartSession(l, r.res);
        continue;
      }
      if (r.cancelled()) continue;
      metrics_->accept_errors.Add();
      int64_t now = MonotonicNowNs();
      if (now - last_accept_error_log_ns_ > 1'000'000'000) {
        last_accept_error_log_ns_ = now;
        RP_LOG(kError, "listener {}: accept failed: {} (backing off 100 ms)", l->config->name,
               strerror(r.error()));
      }
      co_await Sleep(Deadline::AfterMs(100));
    }
    co_await stream.Stop();
    // Serve what the kernel has already accepted, then what waits in the backlog,
    // so that closing the socket resets no completed handshake.
    for (int fd = stream.TryTake(); fd >= 0; fd = stream.TryTake()) StartSession(l, fd);
    for (;;) {
      int fd = accept4(l->fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      StartSession(l, fd);
    }
    l->stream = nullptr;
    for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
      if (it->get() == l) {
        listeners_.erase(it);  // closes the socket
        break;
      }
    }
  }

  Task<void> DrainTask(int64_t timeout_ms, Gate::Holder /*holder*/) {
    Deadline deadline = Deadline::AfterMs(timeout_ms);
    // Stopping listeners still serve their backlog, which may add sessions: count
    // sessions only once every accept loop is done.
    co_await listener_gate_.Wait();
    if (session_gate_.count() > 0 && timeout_ms > 0) {
      RP_LOG(kInfo, "draining {} sessions for up to {} ms", session_gate_.count(), timeout_ms);
    }
    while (session_gate_.count() > 0 && !deadline.Passed() && !stop_now_) {
      co_await Sleep(Earliest(deadline, Deadline::AfterMs(50)));
    }
    if (session_gate_.count() > 0) {
      if (!stop_now_) {
        RP_LOG(kWarn, "drain deadline reached: closing {} sessions", session_gate_.count());
      }
      sessions_.ForEach([](SessionBase* s) { s->Stop(); });
    }
    co_await session_gate_.Wait();
    finished_.Set();
  }

  Shard& shard_;
  ShardMetrics* metrics_;
  RuntimeConfig runtime_;
  Router::PeerForget peer_forget_;
  std::unique_ptr<PipePool> pipes_;
  std::unique_ptr<BufferRing> buffers_;
  IdleSweeper sweeper_;
  HostResolver resolver_;
  std::unique_ptr<UpstreamPool> http_pool_;
  Gate retire_gate_;  // route stacks of retired generations, closing
  std::vector<ShardSnapshot*> live_snapshots_;
  ShardServices services_;
  SnapshotRef current_;
  std::vector<std::unique_ptr<ActiveListener>> listeners_;
  IntrusiveList<SessionBase> sessions_;
  Gate session_gate_;
  Gate listener_gate_;  // accept loops
  Gate task_gate_;      // the drain task
  Event finished_;
  bool draining_ = false;
  bool stop_now_ = false;
  int64_t last_accept_error_log_ns_ = 0;
};

struct Server::ShardSlot {
  ShardMetrics metrics;
  ShardServer* live = nullptr;  // read and written only on the shard's own thread
  std::promise<absl::Status> ready;
  std::atomic<Shard*> shard{nullptr};  // once started: what other shards post to
};

namespace {

Task<void> ShardMain(Shard* shard, ShardServer** live, std::promise<absl::Status>* ready,
                     ShardMetrics* metrics, RuntimeConfig runtime, ShardUpdate initial,
                     Router::PeerForget peer_forget, std::function<void()> on_exit) {
  {
    ShardServer server(*shard, metrics, runtime, std::move(peer_forget));
    absl::Status status = server.Init();
    ready->set_value(status);
    if (status.ok()) {
      *live = &server;
      co_await server.Run(std::move(initial));
      *live = nullptr;
    } else {
      CloseAll(initial);
    }
  }
  ReleaseThreadTlsState();
  on_exit();
}

void RaiseDescriptorLimit() {
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    rlim_t old = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) == 0) {
      RP_LOG(kInfo, "raised the descriptor limit from {} to {}", old, lim.rlim_cur);
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ConfigPtr config) {
  std::unique_ptr<Server> server(new Server());
  server->config_ = config;
  server->runtime_ = config->runtime;
  server->done_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!server->done_fd_.valid()) return absl::InternalError("eventfd failed");
  absl::StatusOr<std::vector<int>> cpus = ResolveShardCpus(config->runtime);
  if (!cpus.ok()) return cpus.status();
  RaiseDescriptorLimit();
  absl::Status status = server->StartShards(*cpus);
  if (!status.ok()) return status;
  return server;
}

absl::StatusOr<std::vector<std::vector<std::pair<std::string, int>>>> Server::BindNewListeners(
    const Config& config) {
  const size_t n = slots_.size();
  std::vector<std::vector<std::pair<std::string, int>>> per_shard(n);
  auto close_made = [&per_shard] {
    for (auto& v : per_shard) {
      for (auto& [key, fd] : v) close(fd);
    }
  };
  // Every new address is checked before any is bound (SO_REUSEPORT would let us join
  // another process's group), except where this process's own sockets would read as
  // the other owner: the same address, or a wildcard on either side (0.0.0.0:993
  // beside [::]:993 or 127.0.0.1:993). 127.0.0.2:993 beside our 127.0.0.1:993 is checked.
  std::vector<SocketAddress> ours;
  for (const std::string& k : listener_keys_) {
    absl::StatusOr<SocketAddress> a = SocketAddress::Parse(k.substr(k.find('|') + 1));
    if (a.ok()) ours.push_back(*a);
  }
  auto wildcard = [](const SocketAddress& a) {
    const std::string host = a.HostString();
    return host == "0.0.0.0" || host == "::";
  };
  for (const ListenerConfig& l : config.listeners) {
    if (listener_keys_.count(ListenerKey(l)) != 0) continue;
    const bool overlaps_ours = std::any_of(ours.begin(), ours.end(), [&](const SocketAddress& a) {
      return a.port() == l.address.port() && (a == l.address || wildcard(a) || wildcard(l.address));
    });
    if (overlaps_ours) continue;
    if (absl::Status free = CheckAddressFree(l.address); !free.ok()) {
      return absl::Status(free.code(), fmt::format("listener {}: {}", l.name, MessageOf(free)));
    }
  }
  for (const ListenerConfig& l : config.listeners) {
    std::string key = ListenerKey(l);
    if (listener_keys_.count(key) != 0) continue;
    for (size_t i = 0; i < n; ++i) {
      absl::StatusOr<UniqueFd> fd =
          ListenTcp(l.address, ListenOptions{l.backlog, true, l.send_buffer});
      if (!fd.ok()) {
        close_made();
        return absl::Status(fd.status().code(),
                            fmt::format("listener {}: {}", l.name, MessageOf(fd.status())));
      }
      per_shard[i].emplace_back(key, fd->Release());
    }
  }
  return per_shard;
}

absl::Status Server::StartShards(const std::vector<int>& cpus) {
  for (size_t i = 0; i < cpus.size(); ++i) slots_.push_back(std::make_unique<ShardSlot>());
  auto binds = BindNewListeners(*config_);
  if (!binds.ok()) return binds.status();
  listener_keys_ = ListenerKeys(*config_);
  ReactorOptions options;
  options.sq_entries = static_cast<unsigned>(config_->runtime.ring_entries);
  options.coalesce_us = static_cast<unsigned>(config_->runtime.coalesce_us);
  for (size_t i = 0; i < cpus.size(); ++i) {
    ShardSlot* slot = slots_[i].get();
    ShardUpdate initial{config_, (*binds)[i]};
    RuntimeConfig runtime = runtime_;
    Server* self = this;
    running_shards_.fetch_add(1);
    absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Start(
        static_cast<int>(i), cpus[i], options, [slot, initial, runtime, self](Shard& s) {
          return ShardMain(
              &s, &slot->live, &slot->ready, &slot->metrics, runtime, initial,
              [self](std::vector<std::string> keys) { self->ForgetEverywhere(std::move(keys)); },
              [self] { self->OnShardExit(); });
        });
    absl::Status status;
    if (shard.ok()) {
      slot->shard.store(shard->get(), std::memory_order_release);
      shards_.push_back(std::move(*shard));
      status = slot->ready.get_future().get();
    } else {
      CloseAll(initial);
      running_shards_.fetch_sub(1);
      status = shard.status();
    }
    if (!status.ok()) {
      for (size_t j = i + 1; j < cpus.size(); ++j) CloseAll(ShardUpdate{config_, (*binds)[j]});
      StopNow();
      Wait();
      return absl::Status(status.code(),
                          fmt::format("shard {} on CPU {}: {}", i, cpus[i], MessageOf(status)));
    }
  }
  RP_LOG(kInfo, "started {} shards on CPUs {}", cpus.size(), fmt::join(cpus, ","));
  return absl::OkStatus();
}

void Server::OnShardExit() {
  if (running_shards_.fetch_sub(1) == 1) {
    uint64_t one = 1;
    ssize_t n = write(done_fd_.get(), &one, sizeof(one));
    (void)n;
  }
}

absl::Status Server::Reload(ConfigPtr config) {
  if (runtime_ != config->runtime) {
    RP_LOG(kWarn,
           "reload: [runtime] changes take effect at the next start; keeping the "
           "running values");
  }
  auto binds = BindNewListeners(*config);
  if (!binds.ok()) return binds.status();
  listener_keys_ = ListenerKeys(*config);
  config_ = config;
  for (size_t i = 0; i < shards_.size(); ++i) {
    ShardSlot* slot = slots_[i].get();
    ShardUpdate update{config, (*binds)[i]};
    shards_[i]->Post([slot, update] {
      if (slot->live != nullptr) {
        slot->live->Apply(update);
      } else {
        CloseAll(update);
      }
    });
  }
  return absl::OkStatus();
}

void Server::ForgetEverywhere(std::vector<std::string> keys) {
  // slots_ is complete before the first shard starts; a shard not started yet has
  // nothing cached. The sender too: its stacks of other generations.
  auto shared = std::make_shared<const std::vector<std::string>>(std::move(keys));
  for (size_t i = 0; i < slots_.size(); ++i) {
    ShardSlot* slot = slots_[i].get();
    Shard* shard = slot->shard.load(std::memory_order_acquire);
    if (shard == nullptr) continue;
    shard->Post([slot, shared] {
      if (slot->live != nullptr) slot->live->ForgetHere(*shared);
    });
  }
}

int64_t Server::Drain() {
  int64_t timeout = runtime_.drain_timeout_ms;
  for (size_t i = 0; i < shards_.size(); ++i) {
    ShardSlot* slot = slots_[i].get();
    shards_[i]->Post([slot, timeout] {
      if (slot->live != nullptr) slot->live->BeginDrain(timeout);
    });
  }
  return timeout;
}

void Server::StopNow() {
  for (size_t i = 0; i < shards_.size(); ++i) {
    ShardSlot* slot = slots_[i].get();
    shards_[i]->Post([slot] {
      if (slot->live != nullptr) slot->live->StopNow();
    });
  }
}

void Server::Wait() {
  for (auto& s : shards_) s->Join();
}

Server::~Server() {
  StopNow();
  Wait();
}

uint64_t Server::CounterTotal(Counter ShardMetrics::*counter) const {
  uint64_t total = 0;
  for (const auto& slot : slots_) total += (slot->metrics.*counter).value();
  return total;
}

int64_t Server::ActiveConnections() const {
  int64_t total = 0;
  for (const auto& slot : slots_) total += slot->metrics.connections_active.value();
  return total;
}

std::string Server::StatsSummary() const {
  std::string out = fmt::format("connections_active={}", ActiveConnections());
#define RINGPROXY_APPEND_COUNTER(name, help) \
  out += fmt::format(" {}={}", #name, CounterTotal(&ShardMetrics::name));
  RINGPROXY_SHARD_COUNTERS(RINGPROXY_APPEND_COUNTER)
#undef RINGPROXY_APPEND_COUNTER
  return out;
}

}  // namespace ringproxy
