// The TCP stream proxy session (protocol = "tcp"). Phases:
//   accept -> TLS handshake when the listener has [listener.tls] (deadline; a failed
//   or silent handshake reaches no upstream) -> upstream connect (balancer plan; a
//   failed connect tries the next server; no retry once connected) -> TLS handshake
//   with the upstream when its group has [upstream.tls] -> pump (splice when both ends
//   are plain) -> close + access log line.
// The client's early bytes wait in its socket while the upstream connects.
#pragma once

#include "proto/protocols.h"

namespace ringproxy {

// protocol = "tcp": requires `upstream`.
extern const ProtocolSpec kTcpProtocol;

}  // namespace ringproxy
