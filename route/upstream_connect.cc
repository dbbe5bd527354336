#include "route/upstream_connect.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "core/log.h"
#include "core/ops.h"

namespace ringproxy {

namespace {

// One attempt; *fd holds the connected socket on success. *no_socket: the socket
// could not even be made (descriptors or memory): the proxy's fault, not the server's.
Task<IoResult> ConnectOne(const SocketAddress* address, int64_t timeout_ms, ConnectControl* control,
                          UniqueFd* fd, bool* no_socket) {
  IoResult s = OpenTcpSocket(address->family());
  *no_socket = !s.ok();
  if (!s.ok()) co_return s;
  UniqueFd made(s.res);
  control->current_fd = made.get();
  IoResult c =
      co_await Connect(made.get(), address->get(), address->size(), Deadline::AfterMs(timeout_ms));
  control->current_fd = -1;
  if (c.ok()) *fd = std::move(made);
  co_return c;
}

}  // namespace

void MakePlan(UpstreamBalancer* balancer, const SocketAddress& client, UpstreamPlan* plan) {
  plan->size = balancer->Plan(client, MonotonicNowNs(), plan->servers);
}

void PinFirst(UpstreamPlan* plan, uint32_t server) {
  uint32_t* end = std::remove(plan->servers, plan->servers + plan->size, server);
  const size_t rest =
      std::min(static_cast<size_t>(end - plan->servers), std::size(plan->servers) - 1);
  std::copy_backward(plan->servers, plan->servers + rest, plan->servers + rest + 1);
  plan->servers[0] = server;
  plan->size = rest + 1;
}

Task<Result<UpstreamConnection>> ConnectUpstream(UpstreamBalancer* balancer, SocketAddress client,
                                                 std::string_view who, ConnectControl* control,
                                                 const UpstreamPlan* given, size_t skip) {
  UpstreamPlan own;
  if (given == nullptr) {
    MakePlan(balancer, client, &own);
    given = &own;
  }
  const uint32_t* plan = given->servers;
  const size_t n = given->size;
  const UpstreamGroupConfig& group = balancer->config();
  int last_error = EHOSTUNREACH;
  for (size_t i = skip; i < n; ++i) {
    if (control->stop) co_return Error::Upstream(ECANCELED, false);
    const UpstreamServerConfig& server = group.servers[plan[i]];
    // Counted from the attempt on, so that concurrent picks see it (least_conn).
    ServerLease lease(balancer, plan[i]);
    control->last_server = plan[i];
    UniqueFd fd;
    bool no_socket = false;
    IoResult c =
        co_await ConnectOne(&server.address, group.connect_timeout_ms, control, &fd, &no_socket);
    if (no_socket) {
      RP_LOG(kError, "{}: cannot create socket for upstream {}: {}", who, server.text,
             strerror(c.error()));
      co_return Error::Internal(c.error());
    }
    if (c.ok()) {
      if (control->success_at_connect) balancer->ReportSuccess(plan[i]);
      co_return UpstreamConnection{std::move(fd), plan[i], std::move(lease)};
    }
    if (control->stop) co_return Error::Upstream(ECANCELED, false);
    last_error = c.error();
    ++control->failures;
    balancer->ReportFailure(plan[i], MonotonicNowNs());
    RP_LOG(kWarn, "{}: client {}: upstream {} ({}) connect failed: {}{}", who, client.ToString(),
           server.text, group.name, strerror(last_error),
           i + 1 < n ? "; trying the next server" : "");
  }
  co_return Error::Upstream(last_error, false);
}

Task<Result<UpstreamConnection>> ConnectAddresses(std::vector<SocketAddress> addresses,
                                                  int64_t timeout_ms, std::string_view who,
                                                  SocketAddress client, ConnectControl* control) {
  int last_error = EHOSTUNREACH;
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (control->stop) co_return Error::Upstream(ECANCELED, false);
    UniqueFd fd;
    bool no_socket = false;
    IoResult c = co_await ConnectOne(&addresses[i], timeout_ms, control, &fd, &no_socket);
    if (no_socket) {
      RP_LOG(kError, "{}: cannot create socket for upstream {}: {}", who, addresses[i].ToString(),
             strerror(c.error()));
      co_return Error::Internal(c.error());
    }
    if (c.ok()) co_return UpstreamConnection{std::move(fd), static_cast<uint32_t>(i), {}};
    if (control->stop) co_return Error::Upstream(ECANCELED, false);
    last_error = c.error();
    ++control->failures;
    RP_LOG(kWarn, "{}: client {}: upstream {} connect failed: {}{}", who, client.ToString(),
           addresses[i].ToString(), strerror(last_error),
           i + 1 < addresses.size() ? "; trying the next address" : "");
  }
  co_return Error::Upstream(last_error, false);
}

}  // namespace ringproxy
