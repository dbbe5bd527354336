#include "proto/session_tls.h"

#include <cstring>

#include "core/log.h"
#include "tls/config.h"

namespace ringproxy {
namespace {

std::string HandshakeFailure(const TlsStream& tls, IoResult r) {
  if (r.timed_out()) return "no handshake within the deadline";
  if (r.res == -EPROTO) return tls.error_text();
  if (!tls.error_text().empty()) return tls.error_text();
  return strerror(r.error());
}

}  // namespace

Task<bool> AcceptTls(ShardServices* services, ShardSnapshot* snapshot,
                     const ListenerConfig* listener, ByteStream* transport, SocketAddress peer,
                     const bool* stopped, std::unique_ptr<TlsStream>* out) {
  ShardMetrics& metrics = *services->metrics;
  const auto* tls = listener->extensions.Get<TlsListenerConfig>(kTlsTable);
  TlsServerShardContext* ctx =
      tls != nullptr ? snapshot->tls_servers[static_cast<size_t>(listener->index)].get() : nullptr;
  WOLFSSL* ssl = ctx != nullptr ? ctx->NewSession() : nullptr;
  if (ssl == nullptr) {
    RP_LOG(kError, "{}: client {}: no TLS session could be made; closing", listener->name,
           peer.ToString());
    co_return false;
  }
  *out = std::make_unique<TlsStream>(transport, ssl, TlsStream::Role::kServer);
  IoResult h = co_await (*out)->Handshake(Deadline::AfterMs(tls->handshake_timeout_ms));
  if (!h.ok()) {
    // A stop (the drain deadline, a second signal) is counted as such by the caller.
    if (!*stopped) {
      metrics.tls_handshake_failures.Add();
      RP_LOG(kInfo, "{}: client {}: TLS handshake failed: {}", listener->name, peer.ToString(),
             HandshakeFailure(**out, h));
    }
    co_return false;
  }
  metrics.tls_handshakes.Add();
  if ((*out)->resumed()) metrics.tls_resumed.Add();
  co_return true;
}

Task<IoResult> ConnectTls(ShardServices* services, TlsClientShardContext* context,
                          uint32_t timeout_ms, ByteStream* transport,
                          const ListenerConfig* listener, SocketAddress peer, std::string server,
                          const bool* stopped, std::unique_ptr<TlsStream>* out) {
  WOLFSSL* ssl = context != nullptr ? context->NewSession() : nullptr;
  IoResult h{-ENOMEM};
  if (ssl != nullptr) {
    *out = std::make_unique<TlsStream>(transport, ssl, TlsStream::Role::kClient);
    h = co_await (*out)->Handshake(Deadline::AfterMs(timeout_ms));
  }
  if (h.ok()) co_return h;
  if (!*stopped) {
    services->metrics->upstream_tls_failures.Add();
    RP_LOG(kWarn, "{}: client {}: TLS with upstream {} failed: {}", listener->name, peer.ToString(),
           server, *out != nullptr ? HandshakeFailure(**out, h) : std::string("no TLS session"));
  }
  co_return h;
}

std::string TlsSummary(const TlsStream* tls) {
  if (tls == nullptr) return "";
  return fmt::format(
      " tls={} cipher={} resumed={} sni={}", tls->version(), tls->cipher(), tls->resumed() ? 1 : 0,
      log::Word{tls->server_name().empty() ? std::string_view("-") : tls->server_name()});
}

}  // namespace ringproxy
