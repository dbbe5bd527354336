#include "proto/tcp_proxy.h"

#include <sys/socket.h>

#include <cstring>

#include "core/log.h"
#include "core/plain_stream.h"
#include "core/pump.h"
#include "core/reactor.h"
#include "route/upstream_connect.h"

namespace ringproxy {
namespace {

class TcpSession final : public SessionBase {
 public:
  explicit TcpSession(ByteStream* client) : client_(client) {}

  // Every wait of the session ends soon, whichever phase it is in: the connect (its
  // socket is cancelled), the pump, or the client stream itself (aborted: sticky).
  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    connect_.stop = true;
    if (pump_ != nullptr) pump_->Stop();
    if (connect_.current_fd >= 0) Reactor::Current()->CancelFd(connect_.current_fd);
    client_->Abort();
  }

  bool stopped() const { return stopped_; }
  ConnectControl* connect_control() { return &connect_; }
  void set_pump(Pump* pump) { pump_ = pump; }

 private:
  ByteStream* client_;
  bool stopped_ = false;
  ConnectControl connect_;
  Pump* pump_ = nullptr;
};

void CountEnd(ShardMetrics& metrics, const PumpResult& result) {
  metrics.bytes_to_upstream.Add(result.bytes_to_upstream);
  metrics.bytes_to_downstream.Add(result.bytes_to_downstream);
  switch (result.end) {
    case PumpEnd::kIdleTimeout:
      metrics.relay_idle_timeouts.Add();
      break;
    case PumpEnd::kDownstreamError:
    case PumpEnd::kUpstreamError:
    case PumpEnd::kInternalError:
      metrics.relay_errors.Add();
      break;
    case PumpEnd::kStopped:
      metrics.sessions_stopped.Add();
      break;
    case PumpEnd::kClosed:
      break;
  }
}

}  // namespace

Task<void> TcpProxySession(ShardServices* services, SnapshotRef snapshot,
                           const ListenerConfig* listener, int client_fd, SocketAddress peer,
                           Gate::Holder /*holder*/) {
  ShardMetrics& metrics = *services->metrics;
  metrics.connections_active.Add();
  PlainStream client(UniqueFd(client_fd), services->buffers);
  TcpSession session(&client);
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
    shutdown(client.fd(), SHUT_WR);
    co_await client.Quiesce();
    metrics.connections_active.Sub();
    co_return;
  }
  metrics.upstream_connects.Add();
  const UpstreamServerConfig& server = balancer->config().servers[upstream->server_index];
  PlainStream up(std::move(upstream->fd), services->buffers);

  PumpOptions options;
  options.idle_timeout_ms = listener->idle_timeout_ms;
  options.send_timeout_ms = listener->send_timeout_ms;
  options.mode = listener->relay;
  Pump pump(&client, &up, PumpResources{services->pipes, services->buffers, services->sweeper},
            options);
  session.set_pump(&pump);
  if (session.stopped()) pump.Stop();
  PumpResult result = co_await pump.Run();
  session.set_pump(nullptr);
  co_await up.Quiesce();
  co_await client.Quiesce();

  CountEnd(metrics, result);
  metrics.connections_active.Sub();
  if (config.log.access) {
    RP_LOG(kInfo,
           "access tcp listener={} client={} upstream={} to_upstream={} to_client={} "
           "duration_ms={} end={}{}{}",
           listener->name, peer.ToString(), server.text, result.bytes_to_upstream,
           result.bytes_to_downstream, (MonotonicNowNs() - start_ns) / 1'000'000,
           PumpEndName(result.end), result.error != 0 ? " error=" : "",
           result.error != 0 ? strerror(result.error) : "");
  }
}

}  // namespace ringproxy
