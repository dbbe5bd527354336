// TLS on a session's connections, as every listener protocol starts it: as the server
// with the listener's certificates (implicit TLS, STARTTLS, STLS) and as the client
// towards an upstream. Failures are logged (not when the session was stopped) and
// counted in the shard's metrics.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/plain_stream.h"
#include "core/socket.h"
#include "core/task.h"
#include "proto/session.h"
#include "tls/tls_stream.h"

namespace ringproxy {

// The server handshake on `transport` with the listener's [listener.tls]; *out holds the
// TLS stream (also on failure, so that the caller can quiesce in order). True when done.
Task<bool> AcceptTls(ShardServices* services, ShardSnapshot* snapshot,
                     const ListenerConfig* listener, ByteStream* transport, SocketAddress peer,
                     const bool* stopped, std::unique_ptr<TlsStream>* out);

// The client handshake with an upstream (`server` names it in logs: "10.0.0.5:7143"):
// the handshake's result (-ETIMEDOUT at its deadline).
Task<IoResult> ConnectTls(ShardServices* services, TlsClientShardContext* context,
                          uint32_t timeout_ms, ByteStream* transport,
                          const ListenerConfig* listener, SocketAddress peer, std::string server,
                          const bool* stopped, std::unique_ptr<TlsStream>* out);

// What the access line says about the client's TLS, e.g. " tls=TLSv1.3 resumed=1 sni=a.b".
std::string TlsSummary(const TlsStream* tls);

}  // namespace ringproxy
