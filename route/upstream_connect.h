// Connecting to an upstream group: walk the balancer's plan, one non-blocking connect
// per server with the group's connect timeout, report each outcome to the balancer
// (passive health), and fail over to the next server on any connect error.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/socket.h"
#include "core/task.h"
#include "route/balancer.h"

namespace ringproxy {

// Shared between a connect in progress and whoever may stop it.
struct ConnectControl {
  int current_fd = -1;       // the socket being connected, for CancelFd
  bool stop = false;         // set by the stopper before cancelling
  uint32_t failures = 0;     // attempts that failed
  int64_t last_server = -1;  // the group's index of the server tried last
  // A connect clears the server's failures; false: the caller says when the server
  // has served (HTTP: an answer's head), so that failures after the connect add up.
  bool success_at_connect = true;
};

struct UpstreamConnection {
  UniqueFd fd;
  uint32_t server_index = 0;
  ServerLease lease;  // held for as long as the connection is used (least_conn)
};

// The servers to try for one connection, the balancer's pick first.
struct UpstreamPlan {
  uint32_t servers[64];
  size_t size = 0;
};
void MakePlan(UpstreamBalancer* balancer, const SocketAddress& client, UpstreamPlan* plan);
// Puts `server` first and keeps the rest in order after it; a full plan without it
// loses its last entry.
void PinFirst(UpstreamPlan* plan, uint32_t server);

// `who` prefixes log lines (listener name). Fails with an upstream error when no
// server could be reached (ECONNREFUSED/ETIMEDOUT of the last attempt), or
// ECANCELED when stopped. `plan` (null: a new one) is the order to try servers in,
// from `skip` on (a caller that took a pooled connection to the pick made the plan).
Task<Result<UpstreamConnection>> ConnectUpstream(UpstreamBalancer* balancer, SocketAddress client,
                                                 std::string_view who, ConnectControl* control,
                                                 const UpstreamPlan* plan = nullptr,
                                                 size_t skip = 0);

// Connects to the first of `addresses` that answers (a route's host name may have
// several), each attempt with `timeout_ms`; server_index is the address's index.
Task<Result<UpstreamConnection>> ConnectAddresses(std::vector<SocketAddress> addresses,
                                                  int64_t timeout_ms, std::string_view who,
                                                  SocketAddress client, ConnectControl* control);

}  // namespace ringproxy
