// The TCP stream proxy session (protocol = "tcp"). Phases:
//   accept -> upstream connect (balancer plan; a failed connect tries the next
//   server; no retry once connected) -> splice relay -> close + access log line.
// The client's early bytes wait in its socket while the upstream connects.
#pragma once

#include "core/socket.h"
#include "core/sync.h"
#include "core/task.h"
#include "proto/session.h"

namespace ringproxy {

Task<void> TcpProxySession(ShardServices* services, SnapshotRef snapshot,
                           const ListenerConfig* listener, int client_fd, SocketAddress peer,
                           Gate::Holder holder);

}  // namespace ringproxy
