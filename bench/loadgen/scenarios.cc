// The client scenarios: bulk, tcp-echo, idle. Each runs on one thread's reactor for
// that thread's share of connections, over plain TCP or, with --tls, over TLS
// (bench/loadgen/link.h: one body for both); every failure is counted by kind in Stats.
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "bench/loadgen/link.h"
#include "bench/loadgen/loadgen.h"
#include "bench/loadgen/pattern.h"
#include "bench/loadgen/tls_client.h"
#include "core/ops.h"
#include "core/sync.h"

namespace ringproxy::loadgen {
namespace {

constexpr size_t kBulkReceiveBytes = 256 << 10;

int64_t SecondsToNs(double s) { return static_cast<int64_t>(s * 1e9); }

// Connects, sets up the run's kind of connection (the socket itself, or TLS with the
// handshake done) and runs body(link) on it; `slot` names the connection for --resume.
template <typename Body>
Task<void> WithLink(ThreadContext* ctx, int slot, size_t receive_bytes, Body body) {
  UniqueFd fd = co_await ConnectTarget(ctx);
  if (!fd.valid()) co_return;
  if (ctx->tls == nullptr) {
    SocketLink link(fd.get(), receive_bytes);
    co_await body(&link);
    co_return;
  }
  std::unique_ptr<TlsConnection> conn = co_await ctx->tls->Handshake(ctx, std::move(fd), slot);
  if (conn == nullptr) co_return;
  StreamLink link(&conn->stream(), ctx);
  co_await body(&link);
  co_await conn->Close();
}

struct BulkState {
  uint64_t sent = 0;
  bool sender_done = false;
  bool failed = false;
};

template <typename Link>
Task<void> BulkSender(ThreadContext* ctx, Link* link, BulkState* c, Gate::Holder /*holder*/) {
  const Pattern& pattern = Pattern::Get();
  const Deadline end = Deadline::AtNs(ctx->control->end_ns);
  while (!c->failed && MonotonicNowNs() < ctx->control->end_ns) {
    IoResult r = co_await link->SendSome(pattern.At(c->sent, ctx->options->size), end);
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
  IoResult s = co_await link->ShutdownWrite(IoDeadline(ctx));
  if (!s.ok() && !c->failed) {
    ctx->stats.Error("shutdown", s.error());
    c->failed = true;
  }
}

template <typename Link>
Task<void> BulkReceiver(ThreadContext* ctx, Link* link, BulkState* c, Gate::Holder /*holder*/) {
  const Pattern& pattern = Pattern::Get();
  uint64_t offset = 0;
  for (;;) {
    IoResult r = co_await link->Receive(kBulkReceiveBytes, IoDeadline(ctx));
    if (r.res == 0) break;
    if (!r.ok()) {
      ctx->stats.Error("recv", r.error());
      c->failed = true;
      break;
    }
    const bool same = pattern.Matches(offset, link->Received(r.value()));
    link->Consume(r.value());
    if (!same) {
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

template <typename Link>
Task<void> Bulk(ThreadContext* ctx, Link* link) {
  BulkState c;
  Gate gate;
  Spawn(BulkSender(ctx, link, &c, gate.Enter()));
  Spawn(BulkReceiver(ctx, link, &c, gate.Enter()));
  co_await gate.Wait();
  ++ctx->stats.ops;
}

Task<void> BulkOne(ThreadContext* ctx, int slot, Gate::Holder /*holder*/) {
  // Built before the statement that awaits (GCC 12, core/task.h).
  auto body = [ctx](auto* link) { return Bulk(ctx, link); };
  co_await WithLink(ctx, slot, kBulkReceiveBytes, body);
}

template <typename Link>
Task<void> Echo(ThreadContext* ctx, Link* link, int index, uint64_t* remaining) {
  uint64_t offset = 0;
  const size_t size = ctx->options->size;
  Pacer pacer(ctx, index);
  while (KeepGoing(ctx, pacer, remaining)) {
    const int64_t t0 = co_await pacer.Next();
    const bool ok = co_await Exchange(ctx, link, offset, size);
    if (!ok) break;
    ctx->stats.latency_ns.Record(static_cast<uint64_t>(MonotonicNowNs() - t0));
    ctx->stats.bytes_sent += size;
    ctx->stats.bytes_received += size;
    ++ctx->stats.ops;
    offset += size;
  }
}

Task<void> EchoOne(ThreadContext* ctx, int index, uint64_t* remaining, Gate::Holder /*holder*/) {
  auto body = [ctx, index, remaining](auto* link) { return Echo(ctx, link, index, remaining); };
  co_await WithLink(ctx, index, std::min<size_t>(ctx->options->size, 256 << 10), body);
}

struct IdleState {
  int next = 0;
  std::vector<UniqueFd> fds;                              // plain
  std::vector<std::unique_ptr<TlsConnection>> tls_conns;  // --tls
};

// One idle connection: opened (TLS: handshake done), the greeting read (--greeting),
// the first bytes exchanged, kept.
Task<void> OpenIdle(ThreadContext* ctx, IdleState* state, int slot) {
  UniqueFd fd = co_await ConnectTarget(ctx);
  if (!fd.valid()) co_return;
  const size_t n = ctx->options->send_first;
  const bool greeting = ctx->options->greeting;
  if (ctx->tls == nullptr) {
    if (greeting || n > 0) {
      SocketLink link(fd.get(), std::max<size_t>(n, 512));
      if (greeting && !co_await ReadGreeting(ctx, &link)) co_return;
      if (n > 0 && !co_await Exchange(ctx, &link, 0, n)) co_return;
    }
    ++ctx->stats.opened;
    state->fds.push_back(std::move(fd));
    co_return;
  }
  std::unique_ptr<TlsConnection> conn = co_await ctx->tls->Handshake(ctx, std::move(fd), slot);
  if (conn == nullptr) co_return;
  bool ok = true;
  StreamLink link(&conn->stream(), ctx);
  if (greeting) ok = co_await ReadGreeting(ctx, &link);
  if (ok && n > 0) ok = co_await Exchange(ctx, &link, 0, n);
  if (!ok) {
    co_await conn->Close();
    co_return;
  }
  ++ctx->stats.opened;
  state->tls_conns.push_back(std::move(conn));
}

Task<void> IdleOpener(ThreadContext* ctx, IdleState* state, Gate::Holder /*holder*/) {
  while (state->next < ctx->connections) {
    const int slot = state->next++;
    co_await OpenIdle(ctx, state, slot);
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
  for (int i = 0; i < ctx->connections; ++i) Spawn(BulkOne(ctx, i, gate.Enter()));
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
  // Still open? Nothing to read means yes; data, end of stream or an error means the
  // target (or something on the way) spoke or closed it while it was idle.
  for (const UniqueFd& fd : state.fds) {
    if (!SocketQuiet(fd.get())) ++ctx->stats.closed_early;
  }
  for (const std::unique_ptr<TlsConnection>& c : state.tls_conns) {
    const bool quiet = co_await c->Quiet();
    if (!quiet) ++ctx->stats.closed_early;
  }
  if (ctx->stats.closed_early > 0) {
    ctx->stats.errors["idle connections closed by the target while held"] +=
        ctx->stats.closed_early;
  }
  for (std::unique_ptr<TlsConnection>& c : state.tls_conns) co_await c->Close();
}

}  // namespace ringproxy::loadgen
