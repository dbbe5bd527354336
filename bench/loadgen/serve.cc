// The load generator's servers, upstreams for benchmarks and tests; one SO_REUSEPORT
// listener per thread:
//  * `loadgen serve`: an echo server. Bytes come back through a pipe by splice, so the
//    upstream side of a benchmark costs little CPU and never touches the data.
//  * `loadgen imap-serve` / `pop3-serve`: a scripted mail server that accepts every
//    login (bench/loadgen/mail_script.h), so that a mail benchmark measures the proxy
//    and not the mail server's login.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <set>

#include "absl/status/statusor.h"
#include "bench/loadgen/loadgen.h"
#include "bench/loadgen/mail_script.h"
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

// One mail session: the greeting, then each chunk received fed to the script and its
// replies sent, until the script closes (LOGOUT / QUIT) or the peer does.
Task<void> MailConnection(int raw_fd, ScriptedMailServer::Protocol protocol, std::set<int>* live,
                          Gate::Holder /*holder*/) {
  UniqueFd fd(raw_fd);
  live->insert(raw_fd);
  ScriptedMailServer script(protocol);
  std::string out(script.Greeting());
  std::string in;  // received and not consumed yet (a partial line)
  std::byte chunk[2048];
  for (;;) {
    if (!out.empty()) {
      IoResult w = co_await SendAll(fd.get(), AsBytes(out), Deadline::AfterMs(10'000));
      if (!w.ok()) break;
      out.clear();
    }
    if (script.closing()) break;
    IoResult r = co_await Recv(fd.get(), chunk, Deadline::Never());
    if (r.res <= 0) break;
    in.append(reinterpret_cast<const char*>(chunk), r.value());
    in.erase(0, script.Feed(in, &out));
  }
  live->erase(raw_fd);
}

Task<void> StopWatcher(RunControl* control, AcceptStream* stream, std::set<int>* live) {
  while (!control->stop.load()) co_await Sleep(Deadline::AfterMs(50));
  stream->RequestStop();
  for (int fd : *live) Reactor::Current()->CancelFd(fd);
}

// Accepts on --listen until the run stops; `serve(fd, live, holder)` makes each
// connection's task, which keeps its descriptor in `live` while it runs.
template <typename Serve>
Task<void> AcceptLoop(ThreadContext* ctx, Serve serve) {
  absl::StatusOr<UniqueFd> listener = ListenTcp(ctx->options->listen, ListenOptions{4096, true});
  if (!listener.ok()) {
    ctx->stats.Error(std::string(MessageOf(listener.status())), 0);
    ctx->control->threads_ready.fetch_add(1);
    co_return;
  }
  ctx->control->threads_ready.fetch_add(1);
  std::set<int> live;
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
    Spawn(serve(r.res, &live, gate.Enter()));
  }
  co_await stream.Stop();
  for (int fd = stream.TryTake(); fd >= 0; fd = stream.TryTake()) close(fd);
  for (int fd : live) Reactor::Current()->CancelFd(fd);
  co_await gate.Wait();
}

Task<void> RunMailServe(ThreadContext* ctx, ScriptedMailServer::Protocol protocol) {
  auto serve = [protocol](int fd, std::set<int>* live, Gate::Holder holder) {
    return MailConnection(fd, protocol, live, std::move(holder));
  };
  co_await AcceptLoop(ctx, serve);
}

}  // namespace

bool IsServer(std::string_view scenario) {
  return scenario == "serve" || scenario == "imap-serve" || scenario == "pop3-serve";
}

Task<void> RunServe(ThreadContext* ctx) {
  PipePool pipes(kPipeSize, 256);
  auto serve = [&pipes](int fd, std::set<int>* live, Gate::Holder holder) {
    return EchoConnection(fd, &pipes, live, std::move(holder));
  };
  co_await AcceptLoop(ctx, serve);
}

Task<void> RunImapServe(ThreadContext* ctx) {
  co_await RunMailServe(ctx, ScriptedMailServer::Protocol::kImap);
}

Task<void> RunPop3Serve(ThreadContext* ctx) {
  co_await RunMailServe(ctx, ScriptedMailServer::Protocol::kPop3);
}

}  // namespace ringproxy::loadgen
