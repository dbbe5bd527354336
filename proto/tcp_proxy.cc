#include "proto/tcp_proxy.h"

#include <sys/socket.h>

#include <cstring>

#include "core/log.h"
#include "core/reactor.h"
#include "proto/relay.h"
#include "route/upstream_connect.h"

namespace ringproxy {
namespace {

class TcpSession final : public SessionBase {
 public:
  explicit TcpSession(int client_fd) : client_fd_(client_fd) {}

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    connect_.stop = true;
    if (relay_ != nullptr) {
      relay_->Stop();
      return;
    }
    if (connect_.current_fd >= 0) Reactor::Current()->CancelFd(connect_.current_fd);
    Reactor::Current()->CancelFd(client_fd_);
  }

  bool stopped() const { return stopped_; }
  ConnectControl* connect_control() { return &connect_; }
  void set_relay(Relay* relay) { relay_ = relay; }

 private:
  int client_fd_;
  bool stopped_ = false;
  ConnectControl connect_;
  Relay* relay_ = nullptr;
};

}  // namespace

Task<void> TcpProxySession(ShardServices* services, SnapshotRef snapshot,
                           const ListenerConfig* listener, int client_fd, SocketAddress peer,
                           Gate::Holder /*holder*/) {
  UniqueFd client(client_fd);
  ShardMetrics& metrics = *services->metrics;
  metrics.connections_active.Add();
  TcpSession session(client.get());
  SessionRegistration registration(services->sessions, &session);
  const int64_t start_ns = MonotonicNowNs();
  const Config& config = *snapshot->config;
  UpstreamBalancer* balancer = &snapshot->balancers[static_cast<size_t>(listener->upstream_index)];

  Result<UpstreamConnection> upstream =
      co_await ConnectUpstream(balancer, peer, listener->name, session.connect_control());
  metrics.upstream_connect_failures.Add(session.connect_control()->failures);
  if (!upstream.ok()) {
    if (session.stopped()) {
      metrics.sessions_stopped.Add();
    } else {
      metrics.sessions_no_upstream.Add();
      RP_LOG(kWarn,
             "{}: client {}: no upstream of '{}' reachable ({} tried, last error: {}); "
             "closing the client connection",
             listener->name, peer.ToString(), balancer->config().name,
             session.connect_control()->failures, strerror(upstream.error().code));
    }
    // FIN first: a client that sent bytes we never read would otherwise see only the
    // RST that close() sends for unread data.
    shutdown(client.get(), SHUT_WR);
    metrics.connections_active.Sub();
    co_return;
  }
  metrics.upstream_connects.Add();
  const UpstreamServerConfig& server = balancer->config().servers[upstream->server_index];

  RelayOptions options;
  options.idle_timeout_ms = listener->idle_timeout_ms;
  options.mode = listener->relay;
  Relay relay(client.get(), upstream->fd.get(),
              RelayResources{services->pipes, services->buffers, services->sweeper}, options);
  session.set_relay(&relay);
  if (session.stopped()) relay.Stop();
  RelayResult result = co_await relay.Run();
  session.set_relay(nullptr);

  metrics.bytes_to_upstream.Add(result.bytes_to_upstream);
  metrics.bytes_to_downstream.Add(result.bytes_to_downstream);
  switch (result.end) {
    case RelayEnd::kIdleTimeout:
      metrics.relay_idle_timeouts.Add();
      break;
    case RelayEnd::kDownstreamError:
    case RelayEnd::kUpstreamError:
    case RelayEnd::kInternalError:
      metrics.relay_errors.Add();
      break;
    case RelayEnd::kStopped:
      metrics.sessions_stopped.Add();
      break;
    case RelayEnd::kClosed:
      break;
  }
  metrics.connections_active.Sub();
  if (config.log.access) {
    RP_LOG(kInfo,
           "access tcp listener={} client={} upstream={} to_upstream={} to_client={} "
           "duration_ms={} end={}{}{}",
           listener->name, peer.ToString(), server.text, result.bytes_to_upstream,
           result.bytes_to_downstream, (MonotonicNowNs() - start_ns) / 1'000'000,
           RelayEndName(result.end), result.error != 0 ? " error=" : "",
           result.error != 0 ? strerror(result.error) : "");
  }
}

}  // namespace ringproxy
