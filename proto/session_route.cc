#include "proto/session_route.h"

#include <utility>

namespace ringproxy {

Task<void> ResolveDetached(SnapshotRef snapshot, ResolveRequest request,
                           std::shared_ptr<PendingRoute> pending, Gate::Holder /*holder*/) {
  ResolveResult r = co_await snapshot->routes->router().Resolve(std::move(request));
  pending->result = std::move(r);
  pending->done.Set();
}

}  // namespace ringproxy
