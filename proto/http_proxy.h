// The HTTP/1.1 reverse proxy session (protocol = "http" and "https"). Per client
// connection, a loop of exchanges:
//   request head (proto/http/head.h: strict, limits; errors answered with their status
//   and the connection closed) -> checks (417 for an unknown expectation, 403 for an
//   encoded CR/LF in the target, 413 over max_body_bytes) -> an upstream connection:
//   a pooled one to the balancer's pick (proto/http_pool.h) or a new connect (failover
//   over the plan; none reachable: 502) -> the request head written afresh
//   (proto/http/forward.h) and the body streamed, re-framed (a length, or chunked) ->
//   "100 Continue" to a client that expects it, once the upstream is connected -> the
//   response head (bad framing: 502, that connection is closed; no head within
//   upstream_timeout_ms: 504) and the body streamed to the client -> the upstream
//   connection back to the pool when its framing allows -> access log line.
// Responses go out in request order: pipelined requests wait in the client's socket.
// A request without a body on a pooled connection that the server closed before
// answering is sent again on a new connection (idempotent methods only).
// After a 101 to an Upgrade request both directions are a pump (splice when plain).
// Every wait has a deadline; Stop() ends every wait; at drain an idle keep-alive
// connection closes and a busy one closes after its response.
#pragma once

#include "proto/protocols.h"

namespace ringproxy {

extern const ProtocolSpec kHttpProtocol;
extern const ProtocolSpec kHttpsProtocol;

}  // namespace ringproxy
