#include "bench/loadgen/tls_client.h"

// options.h first: it carries the build's feature macros and struct layout choices.
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <algorithm>

#include "bench/loadgen/link.h"
#include "fmt/format.h"
#include "tls/library.h"

namespace ringproxy::loadgen {
namespace {

// Receive buffers per thread: 16 MiB of address space, faulted in only as used. The
// idle scenario's connections hold none while idle; a batch of handshakes in flight or
// a few bulk streams use a small part.
constexpr uint32_t kRingBuffers = 1024;
constexpr uint32_t kRingBufferBytes = 16384;

// Counts what the handshake settled on, so a report can show that both targets ran the
// same suite and group. Without allocating: the key is formatted on the stack.
void CountNegotiated(Stats* stats, const TlsStream& s) {
  const char* group = wolfSSL_get_curve_name(s.ssl());
  char key[160];
  const auto out = fmt::format_to_n(key, sizeof(key), "{} {} {}", s.version(), s.cipher(),
                                    group != nullptr ? group : "-");
  const std::string_view k(key, std::min(out.size, sizeof(key)));
  auto it = stats->tls_negotiated.find(k);
  if (it == stats->tls_negotiated.end())
    it = stats->tls_negotiated.emplace(std::string(k), 0).first;
  ++it->second;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsClientContext>> MakeTlsClientContext(const Options& o) {
  if (absl::Status s = InitTlsLibrary(); !s.ok()) return s;
  TlsClientSettings settings;
  settings.verify = !o.ca_file.empty();
  settings.ca_file = o.ca_file;
  settings.server_name = o.sni;
  return TlsClientContext::Create(settings);
}

Task<bool> TlsConnection::Quiet() {
  // What has arrived goes through TLS: records that are not data (the server's
  // session tickets, sent after the handshake by OpenSSL-based servers such as nginx)
  // leave the connection quiet; data, close_notify, an end or an error do not. The
  // read gives up at once when nothing more is there.
  IoResult r = co_await tls_.Fill(Deadline::AfterMs(0));
  co_return r.timed_out() && tls_.buffered() == 0;
}

Task<void> TlsConnection::Close() {
  tls_.Abort();
  co_await tls_.Quiesce();
}

absl::StatusOr<std::unique_ptr<TlsClient>> TlsClient::Create(
    const Options& o, std::shared_ptr<const TlsClientContext> context, int slots) {
  std::unique_ptr<TlsClient> client(new TlsClient());
  client->options_ = &o;
  absl::StatusOr<std::unique_ptr<BufferRing>> ring =
      BufferRing::Create(*Reactor::Current(), /*group_id=*/0, kRingBuffers, kRingBufferBytes);
  if (!ring.ok()) return ring.status();
  client->ring_ = *std::move(ring);
  absl::StatusOr<std::unique_ptr<TlsClientShardContext>> shard =
      TlsClientShardContext::Create(std::move(context));
  if (!shard.ok()) return shard.status();
  client->context_ = *std::move(shard);
  client->sessions_.assign(static_cast<size_t>(std::max(slots, 1)), nullptr);
  return client;
}

TlsClient::~TlsClient() {
  for (WOLFSSL_SESSION* s : sessions_) {
    if (s != nullptr) wolfSSL_SESSION_free(s);
  }
}

WOLFSSL* TlsClient::NewSession(int slot) {
  WOLFSSL* ssl = context_->NewSession();
  if (ssl == nullptr) return nullptr;
  // TLS 1.2 servers issue a ticket only when asked; clients (browsers) ask, so every
  // handshake asks, and a full handshake costs the server the ticket it issues. TLS 1.3
  // servers send tickets unasked.
  bool ok = wolfSSL_UseSessionTicket(ssl) == WOLFSSL_SUCCESS;
  // Pinned through the version range, not wolfSSL_SetVersion, which would reset the
  // session's suites to wolfSSL's defaults (the context's list is the product's).
  if (ok && options_->tls_version == 12) {
    ok = wolfSSL_set_max_proto_version(ssl, TLS1_2_VERSION) == WOLFSSL_SUCCESS;
  }
  if (ok && options_->tls_version == 13) {
    ok = wolfSSL_set_min_proto_version(ssl, TLS1_3_VERSION) == WOLFSSL_SUCCESS;
  }
  if (!ok) {
    wolfSSL_free(ssl);
    return nullptr;
  }
  WOLFSSL_SESSION* kept = sessions_[static_cast<size_t>(slot) % sessions_.size()];
  // A session wolfSSL refuses (expired) means a full handshake, which is counted so.
  if (options_->resume && kept != nullptr) (void)wolfSSL_set_session(ssl, kept);
  return ssl;
}

Task<std::unique_ptr<TlsConnection>> TlsClient::Handshake(ThreadContext* ctx, UniqueFd fd,
                                                          int slot) {
  WOLFSSL* ssl = NewSession(slot);
  if (ssl == nullptr) {
    ctx->stats.Error("tls: cannot make a client session", 0);
    co_return nullptr;
  }
  auto c = std::make_unique<TlsConnection>(std::move(fd), ring_.get(), ssl);
  IoResult r = co_await c->stream().Handshake(IoDeadline(ctx));
  if (!r.ok()) {
    CountTlsError(&ctx->stats, "tls handshake", r, c->stream());
    co_await c->Close();
    co_return nullptr;
  }
  const TlsStream& s = c->stream();
  ++(s.resumed() ? ctx->stats.tls_resumed : ctx->stats.tls_full);
  CountNegotiated(&ctx->stats, s);
  co_return c;
}

void TlsClient::KeepSession(TlsConnection* c, int slot) {
  WOLFSSL_SESSION* session = wolfSSL_get1_session(c->stream().ssl());
  if (session == nullptr) return;
  WOLFSSL_SESSION*& kept = sessions_[static_cast<size_t>(slot) % sessions_.size()];
  if (kept != nullptr) wolfSSL_SESSION_free(kept);
  kept = session;
}

void CountTlsError(Stats* stats, std::string_view what, IoResult r, const TlsStream& stream) {
  if (r.res == -EPROTO && !stream.error_text().empty()) {
    stats->Error(fmt::format("{}: {}", what, stream.error_text()), 0);
  } else {
    stats->Error(what, r.error());
  }
}

}  // namespace ringproxy::loadgen
