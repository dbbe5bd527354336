// The client scenarios: bulk, tcp-echo, idle. Each runs on one thread's reactor for
// that thread's share of connections; every failure is counted by kind in Stats.
#include <sys/socket.h>

#include <vector>

#include "bench/loadgen/loadgen.h"
#include "bench/loadgen/pattern.h"
#include "core/ops.h"
#include "core/sync.h"

namespace ringproxy::loadgen {
namespace {

int64_t SecondsToNs(double s) { return static_cast<int64_t>(s * 1e9); }

// Receives exactly `len` bytes and checks them against the pattern at `offset`.
Task<bool> RecvExpected(ThreadContext* ctx, int fd, uint64_t offset, size_t len,
                        std::vector<std::byte>* buf) {
  size_t got = 0;
  while (got < len) {
    size_t want = std::min(len - got, buf->size());
    IoResult r = co_await Recv(fd, std::span<std::byte>(buf->data(), want), IoDeadline(ctx));
    if (r.res == 0) {
      ctx->stats.Error("target closed the connection early", 0);
      co_return false;
    }
    if (!r.ok()) {
      ctx->stats.Error("recv", r.error());
      co_return false;
    }
    if (!Pattern::Get().Matches(offset + got, std::span<const std::byte>(buf->data(), r.value()))) {
      ctx->stats.Error("received bytes differ from those sent", 0);
      co_return false;
    }
    got += r.value();
  }
  ctx->stats.verified_bytes += len;
  co_return true;
}

struct BulkConnection {
  int fd = -1;
  uint64_t sent = 0;
  bool sender_done = false;
  bool failed = false;
};

Task<void> BulkSender(ThreadContext* ctx, BulkConnection* c, Gate::Holder /*holder*/) {
  const Pattern& pattern = Pattern::Get();
  const Deadline end = Deadline::AtNs(ctx->control->end_ns);
  while (!c->failed && MonotonicNowNs() < ctx->control->end_ns) {
    IoResult r = co_await Send(c->fd, pattern.At(c->sent, ctx->options->size), end);
    if (r.timed_out()) break;
    if (!r.ok()) {
      ctx->stats.Error("send", r.error());
      c->failed = true;
      break;
    }
    c->sent += r.value();
    ctx->stats.bytes_sent += r.value();
  }
  c->sender_done = true;
  shutdown(c->fd, SHUT_WR);
}

Task<void> BulkReceiver(ThreadContext* ctx, BulkConnection* c, Gate::Holder /*holder*/) {
  const Pattern& pattern = Pattern::Get();
  std::vector<std::byte> buf(256 << 10);
  uint64_t offset = 0;
  for (;;) {
    IoResult r = co_await Recv(c->fd, buf, IoDeadline(ctx));
    if (r.res == 0) break;
    if (!r.ok()) {
      ctx->stats.Error("recv", r.error());
      c->failed = true;
      break;
    }
    if (!pattern.Matches(offset, std::span<const std::byte>(buf.data(), r.value()))) {
      ctx->stats.Error("received bytes differ from those sent", 0);
      c->failed = true;
      break;
    }
    offset += r.value();
    if (MonotonicNowNs() <= ctx->control->end_ns) ctx->stats.bytes_received += r.value();
  }
  ctx->stats.verified_bytes += offset;
  if (!c->failed && (!c->sender_done || offset != c->sent)) {
    ctx->stats.Error("echo ended before all bytes came back", 0);
  }
}

Task<void> BulkOne(ThreadContext* ctx, Gate::Holder /*holder*/) {
  UniqueFd fd = co_await ConnectTarget(ctx);
  if (!fd.valid()) co_return;
  BulkConnection c;
  c.fd = fd.get();
  Gate gate;
  Spawn(BulkSender(ctx, &c, gate.Enter()));
  Spawn(BulkReceiver(ctx, &c, gate.Enter()));
  co_await gate.Wait();
  ++ctx->stats.ops;
}

Task<void> EchoOne(ThreadContext* ctx, int index, uint64_t* remaining, Gate::Holder /*holder*/) {
  UniqueFd fd = co_await ConnectTarget(ctx);
  if (!fd.valid()) co_return;
  const Pattern& pattern = Pattern::Get();
  std::vector<std::byte> buf(std::min<size_t>(ctx->options->size, 256 << 10));
  uint64_t offset = 0;
  const size_t size = ctx->options->size;
  Pacer pacer(ctx, index);
  while (KeepGoing(ctx, remaining)) {
    const int64_t t0 = co_await pacer.Next();
    IoResult s = co_await SendAll(fd.get(), pattern.At(offset, size), IoDeadline(ctx));
    if (!s.ok()) {
      ctx->stats.Error("send", s.error());
      break;
    }
    bool ok = co_await RecvExpected(ctx, fd.get(), offset, size, &buf);
    if (!ok) break;
    ctx->stats.latency_ns.Record(static_cast<uint64_t>(MonotonicNowNs() - t0));
    ctx->stats.bytes_sent += size;
    ctx->stats.bytes_received += size;
    ++ctx->stats.ops;
    offset += size;
  }
}

struct IdleState {
  int next = 0;
  std::vector<UniqueFd> fds;
};

Task<void> IdleOpener(ThreadContext* ctx, IdleState* state, Gate::Holder /*holder*/) {
  std::vector<std::byte> buf(std::max<size_t>(ctx->options->send_first, 1));
  while (state->next < ctx->connections) {
    ++state->next;
    UniqueFd fd = co_await ConnectTarget(ctx);
    if (!fd.valid()) continue;
    if (ctx->options->send_first > 0) {
      const size_t n = ctx->options->send_first;
      IoResult s = co_await SendAll(fd.get(), Pattern::Get().At(0, n), IoDeadline(ctx));
      if (!s.ok()) {
        ctx->stats.Error("send", s.error());
        continue;
      }
      bool ok = co_await RecvExpected(ctx, fd.get(), 0, n, &buf);
      if (!ok) continue;
    }
    ++ctx->stats.opened;
    state->fds.push_back(std::move(fd));
  }
}

}  // namespace

Task<UniqueFd> ConnectTarget(ThreadContext* ctx) {
  const Options& o = *ctx->options;
  IoResult s = OpenTcpSocket(o.target.family());
  if (!s.ok()) {
    ctx->stats.Error("socket", s.error());
    ++ctx->stats.connect_failures;
    co_return UniqueFd();
  }
  UniqueFd fd(s.res);
  IoResult c = co_await Connect(fd.get(), o.target.get(), o.target.size(),
                                Deadline::AfterNs(SecondsToNs(o.connect_timeout_s)));
  if (!c.ok()) {
    ctx->stats.Error("connect", c.error());
    ++ctx->stats.connect_failures;
    co_return UniqueFd();
  }
  ++ctx->stats.connects;
  co_return fd;
}

Task<void> RunBulk(ThreadContext* ctx) {
  Gate gate;
  for (int i = 0; i < ctx->connections; ++i) Spawn(BulkOne(ctx, gate.Enter()));
  co_await gate.Wait();
}

Task<void> RunTcpEcho(ThreadContext* ctx) {
  Gate gate;
  uint64_t remaining = ctx->count;
  for (int i = 0; i < ctx->connections; ++i) Spawn(EchoOne(ctx, i, &remaining, gate.Enter()));
  co_await gate.Wait();
}

Task<void> RunIdle(ThreadContext* ctx) {
  IdleState state;
  state.fds.reserve(static_cast<size_t>(ctx->connections));
  {
    Gate gate;
    const int openers = std::min(ctx->options->batch, ctx->connections);
    for (int i = 0; i < openers; ++i) Spawn(IdleOpener(ctx, &state, gate.Enter()));
    co_await gate.Wait();
  }
  ctx->control->threads_ready.fetch_add(1);
  while (!ctx->control->release.load()) co_await Sleep(Deadline::AfterMs(20));
  // Still open? A peek that would block means yes; 0 or an error means the target
  // (or something on the way) closed it while it was idle.
  for (const UniqueFd& fd : state.fds) {
    char c;
    ssize_t n = recv(fd.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) ++ctx->stats.closed_early;
  }
  if (ctx->stats.closed_early > 0) {
    ctx->stats.errors["idle connections closed by the target while held"] +=
        ctx->stats.closed_early;
  }
}

}  // namespace ringproxy::loadgen
