// A session's route resolution that a stop does not wait for. The lookup runs as its
// own task holding the generation (its route stack stays open until the lookup ends);
// the session waits on an event that the task, or the session's Stop(), sets. At
// shutdown the shard aborts lookups still in flight.
#pragma once

#include <memory>

#include "core/sync.h"
#include "core/task.h"
#include "proto/session.h"
#include "route/router.h"

namespace ringproxy {

struct PendingRoute {
  ResolveResult result;
  Event done;  // set by the task, or by Stop() to wake the session
};

// Usage: pending = make_shared; Spawn(ResolveDetached(snapshot, request, pending,
// snapshot->retire_gate->Enter())); then co_await pending->done.Wait() unless stopped.
Task<void> ResolveDetached(SnapshotRef snapshot, ResolveRequest request,
                           std::shared_ptr<PendingRoute> pending, Gate::Holder holder);

}  // namespace ringproxy
