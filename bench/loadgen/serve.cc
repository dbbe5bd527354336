// `loadgen serve`: an echo server for benchmarks and tests. Bytes come back through a
// pipe by splice, so the upstream side of a benchmark costs little CPU and never
// touches the data. One SO_REUSEPORT listener per thread.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <set>

#include "absl/status/statusor.h"
#include "bench/loadgen/loadgen.h"
#include "core/accept_stream.h"
#include "core/log.h"
#include "core/ops.h"
#include "core/pipe_pool.h"
#include "core/status_util.h"
#include "core/sync.h"

namespace ringproxy::loadgen {
namespace {

constexpr int kPipeSize = 1 << 20;

// A pipe is held only while bytes are in it, so an idle connection costs one
// descriptor: thousands of idle echo connections fit the descriptor limit.
Task<void> EchoConnection(int raw_fd, PipePool* pipes, std::set<int>* live,
                          Gate::Holder /*holder*/) {
  UniqueFd fd(raw_fd);
  live->insert(raw_fd);
  for (;;) {
    IoResult ready = co_await Poll(fd.get(), POLLIN | POLLRDHUP, Deadline::Never());
    if (!ready.ok()) break;
    Pipe pipe;
    if (!pipes->Acquire(&pipe).ok()) break;
    IoResult in = SpliceNow(fd.get(), pipe.write_fd, kPipeSize);
    if (in.res == -EAGAIN) {
      pipes->Release(pipe);
      continue;
    }
    if (in.res <= 0) {
      pipes->Release(pipe);
      break;
    }
    size_t left = in.value();
    while (left > 0) {
      IoResult out =
          co_await Splice(pipe.read_fd, fd.get(), left, fd.get(), POLLOUT, Deadline::Never());
      if (out.res <= 0) break;
      left -= out.value();
    }
    if (left == 0) {
      pipes->Release(pipe);
    } else {
      pipes->Discard(pipe);
      break;
    }
  }
  shutdown(fd.get(), SHUT_WR);
  live->erase(raw_fd);
}

Task<void> StopWatcher(RunControl* control, AcceptStream* stream, std::set<int>* live) {
  while (!control->stop.load()) co_await Sleep(Deadline::AfterMs(50));
  stream->RequestStop();
  for (int fd : *live) Reactor::Current()->CancelFd(fd);
}

}  // namespace

Task<void> RunServe(ThreadContext* ctx) {
  absl::StatusOr<UniqueFd> listener = ListenTcp(ctx->options->listen, ListenOptions{4096, true});
  if (!listener.ok()) {
    ctx->stats.Error(std::string(MessageOf(listener.status())), 0);
    ctx->control->threads_ready.fetch_add(1);
    co_return;
  }
  ctx->control->threads_ready.fetch_add(1);
  std::set<int> live;
  PipePool pipes(kPipeSize, 256);
  Gate gate;
  AcceptStream stream(listener->get());
  Spawn(StopWatcher(ctx->control, &stream, &live));
  for (;;) {
    IoResult r = co_await stream.Next();
    if (r.cancelled()) break;
    if (!r.ok()) {
      ctx->stats.Error("accept", r.error());
      co_await Sleep(Deadline::AfterMs(100));
      continue;
    }
    ++ctx->stats.connects;
    Spawn(EchoConnection(r.res, &pipes, &live, gate.Enter()));
  }
  co_await stream.Stop();
  for (int fd = stream.TryTake(); fd >= 0; fd = stream.TryTake()) close(fd);
  for (int fd : live) Reactor::Current()->CancelFd(fd);
  co_await gate.Wait();
}

}  // namespace ringproxy::loadgen
