#include "proto/tcp_proxy.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "core/log.h"
#include "core/plain_stream.h"
#include "core/pump.h"
#include "core/reactor.h"
#include "proto/session_tls.h"
#include "route/upstream_connect.h"
#include "tls/config.h"
#include "tls/tls_stream.h"

namespace ringproxy {
namespace {

ExtensionPtr ReadTcpListener(ConfigTable& t, const Config& /*so_far*/) {
  if (!t.Has("upstream")) t.Error("upstream", "required key is missing");
  if (t.Has(kUpstreamTlsTable)) {
    t.Error(kUpstreamTlsTable, "a tcp listener takes TLS to its upstream from [upstream.tls]");
  }
  return nullptr;
}

class TcpSession final : public SessionBase {
 public:
  explicit TcpSession(ByteStream* client) : client_(client) {}

  // Every wait of the session ends soon, whichever phase it is in: the client's TLS
  // handshake (its transport is aborted), the connect (its socket is cancelled), the
  // upstream's TLS handshake, or the pump. Aborting a stream is sticky.
  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    connect_.stop = true;
    if (pump_ != nullptr) pump_->Stop();
    if (connect_.current_fd >= 0) Reactor::Current()->CancelFd(connect_.current_fd);
    if (upstream_ != nullptr) upstream_->Abort();
    client_->Abort();
  }

  bool stopped() const { return stopped_; }
  const bool* stopped_flag() const { return &stopped_; }
  ConnectControl* connect_control() { return &connect_; }
  void set_pump(Pump* pump) { pump_ = pump; }
  void set_upstream(ByteStream* upstream) {
    upstream_ = upstream;
    if (stopped_ && upstream_ != nullptr) upstream_->Abort();
  }

 private:
  ByteStream* client_;
  ByteStream* upstream_ = nullptr;
  bool stopped_ = false;
  ConnectControl connect_;
  Pump* pump_ = nullptr;
};

// Ends the client's side when no relay follows: close_notify first over TLS (a bare FIN
// reads as a truncation to a strict client), then the FIN, which goes out even when the
// stream could not send (stopped, or a client that does not read: a second at most).
Task<void> EndClient(ByteStream* down, PlainStream& client, const ListenerConfig& listener) {
  if (down != &client) {
    (void)co_await down->ShutdownWrite(
        Deadline::AfterMs(std::min<int64_t>(listener.send_timeout_ms, 1000)));
  }
  shutdown(client.fd(), SHUT_WR);
}

Task<void> TcpProxySession(ShardServices* services, SnapshotRef snapshot,
                           const ListenerConfig* listener, int client_fd, SocketAddress peer,
                           Gate::Holder /*holder*/) {
  ShardMetrics& metrics = *services->metrics;
  metrics.connections_active.Add();
  PlainStream client(UniqueFd(client_fd), services->buffers);
  TcpSession session(&client);
  SessionRegistration registration(services, listener, &session);
  const int64_t start_ns = TurnNowNs();
  const Config& config = *snapshot->config;
  ByteStream* down = &client;
  // On the heap, and only with TLS: an idle plain session's frame stays small.
  std::unique_ptr<TlsStream> client_tls;
  bool ok = true;
  std::string_view failed_as;  // the access line's end when the relay is not reached

  if (listener->extensions.Get<TlsListenerConfig>(kTlsTable) != nullptr) {
    const bool* stopped = session.stopped_flag();
    ok =
        co_await AcceptTls(services, snapshot.get(), listener, &client, peer, stopped, &client_tls);
    if (ok) down = client_tls.get();
    failed_as = "handshake_failed";
  }

  UpstreamBalancer* balancer = &snapshot->balancers[static_cast<size_t>(listener->upstream_index)];
  const UpstreamGroupConfig& group = balancer->config();
  const auto* upstream_tls = group.extensions.Get<TlsUpstreamConfig>(kTlsTable);
  // Over TLS a server has served once its handshake is done: a connect alone does not
  // clear its failures, so that handshakes that keep failing reach max_fails.
  session.connect_control()->success_at_connect = upstream_tls == nullptr;
  UpstreamPlan plan;     // made at the first connect: a session that never gets there
  bool planned = false;  // takes no pick from the balancer
  size_t next = 0;       // the plan's servers before this were tried
  uint32_t failures = 0;
  std::optional<Result<UpstreamConnection>> upstream;
  std::optional<PlainStream> up;
  std::unique_ptr<TlsStream> up_tls;
  ByteStream* upward = nullptr;
  while (ok && !session.stopped()) {
    if (!planned) {
      MakePlan(balancer, peer, &plan);
      planned = true;
    }
    if (next >= plan.size) {
      // Every server left failed its handshake (logged each time).
      metrics.sessions_no_upstream.Add();
      failed_as = "no_upstream";
      ok = false;
      break;
    }
    Result<UpstreamConnection> connected = co_await ConnectUpstream(
        balancer, peer, listener->name, session.connect_control(), &plan, next);
    upstream.emplace(std::move(connected));
    metrics.upstream_connect_failures.Add(session.connect_control()->failures);
    failures += session.connect_control()->failures;
    session.connect_control()->failures = 0;
    if (!upstream->ok()) {
      if (!session.stopped()) {
        metrics.sessions_no_upstream.Add();
        RP_LOG(kWarn,
               "{}: client {}: no upstream of '{}' reachable ({} tried, last error: {}); "
               "closing the client connection",
               listener->name, peer.ToString(), group.name, failures,
               strerror(upstream->error().code));
      }
      failed_as = "no_upstream";
      ok = false;
      break;
    }
    metrics.upstream_connects.Add();
    const uint32_t index = (*upstream)->server_index;
    while (next < plan.size && plan.servers[next] != index) ++next;
    ++next;
    up.emplace(std::move((*upstream)->fd), services->buffers);
    session.set_upstream(&*up);
    upward = &*up;
    if (upstream_tls == nullptr) break;
    TlsClientShardContext* ctx = snapshot->tls_clients[static_cast<size_t>(group.index)].get();
    const bool secured =
        (co_await ConnectTls(services, ctx, upstream_tls->handshake_timeout_ms, &*up, listener,
                             peer, fmt::format("{} ({})", group.servers[index].text, group.name),
                             session.stopped_flag(), &up_tls))
            .ok();
    if (secured) {
      balancer->ReportSuccess(index);
      upward = up_tls.get();
      break;
    }
    // Nothing of the client's went to it: the next server of the plan may have the
    // connection (max_fails counts this one). No TLS session at all is the proxy's
    // own failure (memory): no server is to blame, and the client is closed.
    const bool local = up_tls == nullptr;
    session.set_upstream(nullptr);
    co_await up->Quiesce();
    up_tls.reset();
    up.reset();
    upstream.reset();
    if (local) {
      failed_as = "internal_error";
      ok = false;
      break;
    }
    if (!session.stopped()) balancer->ReportFailure(index, MonotonicNowNs());
    ++failures;
  }
  if (!ok || session.stopped()) {
    if (session.stopped()) metrics.sessions_stopped.Add();
    // FIN first (after close_notify over TLS): a client that sent bytes we never read
    // would otherwise see only the RST that close() sends for unread data.
    co_await EndClient(down, client, *listener);
    if (up.has_value()) co_await up->Quiesce();
    co_await down->Quiesce();
    metrics.connections_active.Sub();
    if (config.log.access) {
      // Every session has its line, also one that never reached the relay (nginx's
      // stream log has one per session too).
      log::AccessLine(
          "access tcp listener={} client={} upstream=- to_upstream=0 to_client=0 duration_ms={} "
          "end={}{}",
          listener->name, peer.ToString(), (TurnNowNs() - start_ns) / 1'000'000,
          session.stopped() ? std::string_view("stopped") : failed_as,
          down != &client ? TlsSummary(client_tls.get()) : std::string());
    }
    co_return;
  }
  const UpstreamServerConfig& server = group.servers[(*upstream)->server_index];

  PumpOptions options;
  options.idle_timeout_ms = listener->idle_timeout_ms;
  options.send_timeout_ms = listener->send_timeout_ms;
  options.mode = listener->relay;
  Pump pump(down, upward, PumpResources{services->pipes, services->buffers, services->sweeper},
            options);
  session.set_pump(&pump);
  if (session.stopped()) pump.Stop();
  PumpResult result = co_await pump.Run();
  session.set_pump(nullptr);
  co_await upward->Quiesce();
  co_await down->Quiesce();

  CountPumpEnd(metrics, result);
  metrics.connections_active.Sub();
  if (config.log.access) {
    // A TLS failure says what failed, not just "Protocol error".
    const TlsStream* failed_tls = result.end == PumpEnd::kDownstreamError ? client_tls.get()
                                  : result.end == PumpEnd::kUpstreamError ? up_tls.get()
                                                                          : nullptr;
    const std::string_view error =
        result.error == 0 ? ""
        : result.error == EPROTO && failed_tls != nullptr && !failed_tls->error_text().empty()
            ? std::string_view(failed_tls->error_text())
            : std::string_view(strerror(result.error));
    log::AccessLine(
        "access tcp listener={} client={} upstream={} to_upstream={} to_client={} "
        "duration_ms={} end={}{}{}{}",
        listener->name, peer.ToString(), server.text, result.bytes_to_upstream,
        result.bytes_to_downstream, (TurnNowNs() - start_ns) / 1'000'000, PumpEndName(result.end),
        error.empty() ? "" : " error=", error, TlsSummary(client_tls.get()));
  }
}

}  // namespace

const ProtocolSpec kTcpProtocol = {"tcp", &ReadTcpListener, &TcpProxySession};

}  // namespace ringproxy
