#include "route/upstream_connect.h"

#include <cstring>

#include "core/log.h"
#include "core/ops.h"

namespace ringproxy {

namespace {
constexpr size_t kMaxPlan = 64;
}  // namespace

Task<Result<UpstreamConnection>> ConnectUpstream(UpstreamBalancer* balancer, SocketAddress client,
                                                 std::string_view who, ConnectControl* control) {
  uint32_t plan[kMaxPlan];
  const size_t n = balancer->Plan(client, MonotonicNowNs(), plan);
  const UpstreamGroupConfig& group = balancer->config();
  int last_error = EHOSTUNREACH;
  for (size_t i = 0; i < n; ++i) {
    if (control->stop) co_return Error::Upstream(ECANCELED, false);
    const UpstreamServerConfig& server = group.servers[plan[i]];
    IoResult s = OpenTcpSocket(server.address.family());
    if (!s.ok()) {
      RP_LOG(kError, "{}: cannot create socket for upstream {}: {}", who, server.text,
             strerror(s.error()));
      co_return Error::Internal(s.error());
    }
    UniqueFd fd(s.res);
    control->current_fd = fd.get();
    IoResult c = co_await Connect(fd.get(), server.address.get(), server.address.size(),
                                  Deadline::AfterMs(group.connect_timeout_ms));
    control->current_fd = -1;
    if (c.ok()) {
      balancer->ReportSuccess(plan[i]);
      co_return UpstreamConnection{std::move(fd), plan[i]};
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

}  // namespace ringproxy
