// The listener protocols the daemon serves, and the config schema they make up. Each
// protocol lives in its own file and exports one ProtocolSpec (its config reader and
// its session); protocols.cc lists them. Adding a protocol adds a file and a line in
// that list, not a branch in a switch.
#pragma once

#include <string_view>

#include "core/config.h"
#include "core/socket.h"
#include "core/sync.h"
#include "core/task.h"
#include "proto/session.h"

namespace ringproxy {

// A session coroutine: owns `client_fd`; runs until the connection is done.
using SessionEntry = Task<void> (*)(ShardServices* services, SnapshotRef snapshot,
                                    const ListenerConfig* listener, int client_fd,
                                    SocketAddress peer, Gate::Holder holder);

struct ProtocolSpec {
  std::string_view name;  // the listener's `protocol`
  ConfigSchema::Reader reader;
  SessionEntry session;
};

// Every protocol plus the modules' sections and tables (TLS): what LoadConfig needs.
const ConfigSchema& ProductSchema();
// The session of `protocol` (a name the schema accepted).
SessionEntry SessionFor(std::string_view protocol);

}  // namespace ringproxy
