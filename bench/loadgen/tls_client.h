// Client TLS for the load generator (--tls). Per thread, a TlsClient holds the
// provided-buffer ring its connections' sockets receive into and the wolfSSL context
// their sessions come from, and per connection slot the session to offer next
// (--resume). A TlsConnection is TLS (TlsStream) over the socket (PlainStream): the
// streams the proxy itself runs. What a handshake did (full or resumed, the version)
// is counted in the thread's Stats; scenarios decide what to do over the connection.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/loadgen/loadgen.h"
#include "core/buffer_ring.h"
#include "core/plain_stream.h"
#include "tls/client_context.h"
#include "tls/tls_stream.h"

struct WOLFSSL_SESSION;

namespace ringproxy::loadgen {

// The run's client context from --sni and --ca (main thread); initialises wolfSSL.
absl::StatusOr<std::shared_ptr<const TlsClientContext>> MakeTlsClientContext(const Options& o);

class TlsConnection {
 public:
  TlsConnection(UniqueFd fd, BufferRing* ring, WOLFSSL* ssl)
      : plain_(std::move(fd), ring), tls_(&plain_, ssl, TlsStream::Role::kClient) {}

  TlsStream& stream() { return tls_; }
  // Open and silent, hardly waiting: no data received (session tickets and other
  // handshake records do not count), no end of stream.
  Task<bool> Quiet();
  // Ends every wait and waits until the kernel lets go; call before destroying.
  Task<void> Close();

 private:
  PlainStream plain_;
  TlsStream tls_;
};

class TlsClient {
 public:
  // On the thread's reactor. `slots`: connection slots that keep a session (--resume).
  static absl::StatusOr<std::unique_ptr<TlsClient>> Create(
      const Options& o, std::shared_ptr<const TlsClientContext> context, int slots);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // The handshake over `fd`, offering the slot's kept session with --resume; counted in
  // ctx->stats. nullptr when it failed (counted as an error, connection closed).
  Task<std::unique_ptr<TlsConnection>> Handshake(ThreadContext* ctx, UniqueFd fd, int slot);
  // --resume: keeps the connection's session for the slot's next handshake. Call after
  // reading data: TLS 1.3 tickets arrive after the handshake.
  void KeepSession(TlsConnection* c, int slot);

 private:
  TlsClient() = default;
  WOLFSSL* NewSession(int slot);

  const Options* options_ = nullptr;
  std::unique_ptr<BufferRing> ring_;
  std::unique_ptr<TlsClientShardContext> context_;
  std::vector<WOLFSSL_SESSION*> sessions_;  // per slot; owned
};

// Counts a failed TLS step: the TLS error's text for -EPROTO, else errno's.
void CountTlsError(Stats* stats, std::string_view what, IoResult r, const TlsStream& stream);

}  // namespace ringproxy::loadgen
