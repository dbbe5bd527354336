// The http scenario: HTTP/1.1 requests over keep-alive (or one per connection),
// pipelined or not, closed loop or paced (open loop). Each response is framed and
// checked (status, body size); anything else is a counted error and the connection
// is replaced. With --tls every connection starts with a handshake (HTTPS); the
// handshake is inside the first request's latency.
#include <memory>
#include <string>

#include "bench/loadgen/conn.h"
#include "bench/loadgen/http_response.h"
#include "bench/loadgen/loadgen.h"
#include "bench/loadgen/pattern.h"
#include "bench/loadgen/tls_client.h"
#include "core/ops.h"
#include "core/sync.h"
#include "fmt/format.h"

namespace ringproxy::loadgen {
namespace {

std::string BuildRequest(const Options& o) {
  std::string r = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringproxy-loadgen\r\n",
                              o.request_size > 0 ? "POST" : "GET", o.path, o.host);
  if (!o.keepalive) r += "Connection: close\r\n";
  if (o.request_size > 0) {
    r += fmt::format("Content-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                     o.request_size);
    // The pattern is a function of the offset: chunks of at most kMaxChunk join up.
    for (uint64_t off = 0; off < o.request_size;) {
      std::span<const std::byte> c = Pattern::Get().At(off, o.request_size - off);
      r.append(reinterpret_cast<const char*>(c.data()), c.size());
      off += c.size();
    }
  } else {
    r += "\r\n";
  }
  return r;
}

// BufferedConn's interface over a TLS connection's plaintext.
class TlsHttpConn {
 public:
  explicit TlsHttpConn(ByteStream* stream) : stream_(stream) {}
  std::string_view pending() const {
    std::span<const std::byte> p = stream_->Peek();
    return {reinterpret_cast<const char*>(p.data()), p.size()};
  }
  void Consume(size_t n) { stream_->Consume(n); }
  Task<IoResult> Fill(Deadline deadline) { return stream_->Fill(deadline); }
  Task<IoResult> Write(std::string_view data, Deadline deadline) {
    return WriteAll(stream_, AsBytes(data), deadline);
  }

 private:
  ByteStream* stream_;
};

// How a response ended: only a right one counts as an operation.
enum class Read : uint8_t { kRight, kWrong, kUnusable };

// Reads one response: kWrong (its error counted) when its status or body is not what was
// expected, kUnusable when the connection cannot carry another.
template <typename Conn>
Task<Read> ReadResponse(ThreadContext* ctx, Conn* conn, HttpResponseReader* reader) {
  reader->Reset();
  for (;;) {
    std::string_view p = conn->pending();
    if (!p.empty()) {
      size_t used = reader->Feed(p);
      conn->Consume(used);
      ctx->stats.bytes_received += used;
    }
    if (reader->done()) break;
    if (reader->failed()) {
      ctx->stats.Error(fmt::format("http: {}", reader->error()), 0);
      co_return Read::kUnusable;
    }
    IoResult r = co_await conn->Fill(IoDeadline(ctx));
    if (r.res == 0) {
      reader->FeedEof();
      if (reader->done()) break;
      ctx->stats.Error(fmt::format("http: {}", reader->error()), 0);
      co_return Read::kUnusable;
    }
    if (!r.ok()) {
      ctx->stats.Error("http recv", r.error());
      co_return Read::kUnusable;
    }
  }
  const Options& o = *ctx->options;
  if (reader->status() != o.expect_status) {
    ctx->stats.Error(fmt::format("http: status {}", reader->status()), 0);
    co_return Read::kWrong;
  }
  if (o.expect_size >= 0 && reader->body_bytes() != static_cast<uint64_t>(o.expect_size)) {
    ctx->stats.Error(
        fmt::format("http: body of {} bytes, expected {}", reader->body_bytes(), o.expect_size), 0);
    co_return Read::kWrong;
  }
  if (!reader->body_matches()) {
    ctx->stats.Error("http: body differs from --expect-fill", 0);
    co_return Read::kWrong;
  }
  co_return Read::kRight;
}

// Sends `batch` (n requests) and reads the n responses; false when the connection
// cannot be used again.
template <typename Conn>
Task<bool> Exchange(ThreadContext* ctx, Conn* conn, std::string_view batch, int n, int64_t intended,
                    HttpResponseReader* reader) {
  IoResult w = co_await conn->Write(batch, IoDeadline(ctx));
  if (!w.ok()) {
    ctx->stats.Error("http send", w.error());
    co_return false;
  }
  ctx->stats.bytes_sent += batch.size();
  for (int i = 0; i < n; ++i) {
    const Read read = co_await ReadResponse(ctx, conn, reader);
    if (read == Read::kUnusable) co_return false;
    if (read == Read::kRight) {
      ctx->stats.latency_ns.Record(static_cast<uint64_t>(MonotonicNowNs() - intended));
      ++ctx->stats.ops;
    }
    if (!reader->keep_alive()) co_return false;
  }
  co_return true;
}

// `request` is one request; `full_batch` that request `pipeline` times (shared by all
// connections of the thread).
Task<void> HttpConnection(ThreadContext* ctx, int index, uint64_t* remaining,
                          const std::string* request, const std::string* full_batch,
                          Gate::Holder /*holder*/) {
  const Options& o = *ctx->options;
  Pacer pacer(ctx, index);
  BufferedConn conn(UniqueFd{});
  std::unique_ptr<TlsConnection> tls;
  HttpResponseReader reader;
  reader.ExpectFill(o.expect_fill);
  int failures_in_a_row = 0;
  for (;;) {
    const auto n =
        static_cast<int>(KeepGoing(ctx, pacer, remaining, static_cast<uint64_t>(o.pipeline)));
    if (n == 0) break;
    std::string_view batch(full_batch->data(), request->size() * static_cast<size_t>(n));
    const int64_t intended = co_await pacer.Next();
    if (!conn.connected() && tls == nullptr) {
      UniqueFd fd = co_await ConnectTarget(ctx);
      if (fd.valid() && ctx->tls != nullptr) {
        tls = co_await ctx->tls->Handshake(ctx, std::move(fd), index);  // counts failures
      } else if (fd.valid()) {
        conn.Reset(std::move(fd));
      }
      if (!conn.connected() && tls == nullptr) {
        // Do not spin against a target that refuses: a short pause per failure.
        if (++failures_in_a_row > 2) co_await Sleep(Deadline::AfterMs(10));
        continue;
      }
    }
    bool usable;
    const uint64_t ops_before = ctx->stats.ops;
    if (tls != nullptr) {
      TlsHttpConn view(&tls->stream());
      usable = co_await Exchange(ctx, &view, batch, n, intended, &reader);
    } else {
      usable = co_await Exchange(ctx, &conn, batch, n, intended, &reader);
    }
    failures_in_a_row = usable ? 0 : failures_in_a_row + 1;
    if (!usable || !o.keepalive) {
      conn.Reset(UniqueFd{});
      if (tls != nullptr) {
        // Its tickets came with the responses: resumable even when the server closed.
        if (ctx->stats.ops > ops_before && o.resume) ctx->tls->KeepSession(tls.get(), index);
        co_await tls->Close();
        tls.reset();
      }
    }
  }
  if (tls != nullptr) co_await tls->Close();
}

}  // namespace

Task<void> RunHttp(ThreadContext* ctx) {
  const std::string request = BuildRequest(*ctx->options);
  std::string full_batch;
  for (int i = 0; i < ctx->options->pipeline; ++i) full_batch += request;
  Gate gate;
  uint64_t remaining = ctx->count;
  for (int i = 0; i < ctx->connections; ++i) {
    Spawn(HttpConnection(ctx, i, &remaining, &request, &full_batch, gate.Enter()));
  }
  co_await gate.Wait();
}

}  // namespace ringproxy::loadgen
