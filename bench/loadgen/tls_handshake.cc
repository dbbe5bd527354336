// tls-handshake: what setting up TLS connections costs a proxy. Each operation is a
// fresh connection: connect, TLS handshake (full, or resumed with --resume), one --size
// message echoed through the proxy to the upstream and back (so the proxy's upstream
// connection and relay are really set up), then close_notify and FIN, and the proxy's
// end of stream. Latency runs from the connect (or the scheduled start, open loop) to
// the echo's last byte; the close is not in it.
#include <memory>

#include "bench/loadgen/link.h"
#include "bench/loadgen/loadgen.h"
#include "bench/loadgen/tls_client.h"
#include "core/ops.h"
#include "core/sync.h"

namespace ringproxy::loadgen {
namespace {

// Our end, then the proxy's: the slot's next connection starts once this one is gone
// on both sides, so connections do not pile up in the proxy behind the load.
Task<bool> CloseGracefully(ThreadContext* ctx, TlsStream* stream) {
  IoResult w = co_await stream->ShutdownWrite(IoDeadline(ctx));
  if (!w.ok()) {
    CountTlsError(&ctx->stats, "tls close", w, *stream);
    co_return false;
  }
  IoResult r = co_await stream->Fill(IoDeadline(ctx));
  if (r.res > 0) {
    ctx->stats.Error("bytes after the echo", 0);
    co_return false;
  }
  if (!r.ok()) {
    CountTlsError(&ctx->stats, "tls close: waiting for the end of stream", r, *stream);
    co_return false;
  }
  co_return true;
}

// One operation; false when it failed (counted already).
Task<bool> HandshakeOnce(ThreadContext* ctx, int slot, int64_t intended) {
  UniqueFd fd = co_await ConnectTarget(ctx);
  if (!fd.valid()) {
    co_await Sleep(Deadline::AfterMs(10));  // a refusing target is not spun on
    co_return false;
  }
  std::unique_ptr<TlsConnection> conn = co_await ctx->tls->Handshake(ctx, std::move(fd), slot);
  if (conn == nullptr) co_return false;
  const size_t size = ctx->options->size;
  StreamLink link(&conn->stream(), ctx);
  bool ok = co_await Exchange(ctx, &link, 0, size);
  if (ok) {
    ctx->stats.latency_ns.Record(static_cast<uint64_t>(MonotonicNowNs() - intended));
    ctx->stats.bytes_sent += size;
    ctx->stats.bytes_received += size;
    // After the echo was read: any TLS 1.3 ticket came before it.
    if (ctx->options->resume) ctx->tls->KeepSession(conn.get(), slot);
    ok = co_await CloseGracefully(ctx, &conn->stream());
  }
  co_await conn->Close();
  co_return ok;
}

Task<void> Handshakes(ThreadContext* ctx, int slot, uint64_t* remaining, Gate::Holder /*holder*/) {
  Pacer pacer(ctx, slot);
  while (KeepGoing(ctx, pacer, remaining)) {
    const int64_t intended = co_await pacer.Next();
    const bool ok = co_await HandshakeOnce(ctx, slot, intended);
    if (ok) ++ctx->stats.ops;
  }
}

}  // namespace

Task<void> RunTlsHandshake(ThreadContext* ctx) {
  Gate gate;
  uint64_t remaining = ctx->count;
  for (int i = 0; i < ctx->connections; ++i) Spawn(Handshakes(ctx, i, &remaining, gate.Enter()));
  co_await gate.Wait();
}

}  // namespace ringproxy::loadgen
