// How a client scenario talks over one connection, behind one interface, so that each
// scenario is written once for plain TCP and for --tls:
//  * SocketLink is the socket itself: the system calls the plain scenarios always made,
//    into one receive buffer per connection (no copy and no allocation per message);
//  * StreamLink is a ByteStream (TLS over the socket): a write is taken whole (the
//    stream keeps what the socket cannot take yet), a read is a view into the stream's
//    plaintext until consumed.
// Templates rather than virtual calls, so that the plain path compiles to what it was.
// The byte checks every scenario shares (RecvExpected, Exchange) are here too.
#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <vector>

#include "bench/loadgen/loadgen.h"
#include "bench/loadgen/pattern.h"
#include "core/byte_stream.h"
#include "core/ops.h"
#include "core/socket.h"

namespace ringproxy::loadgen {

class SocketLink {
 public:
  SocketLink(int fd, size_t receive_bytes) : fd_(fd), buf_(receive_bytes) {}

  // Sends a prefix of `data` (the result may be short); a wait ends at `end`.
  Send SendSome(std::span<const std::byte> data, Deadline end) { return Send(fd_, data, end); }
  Task<IoResult> SendAll(std::span<const std::byte> data, Deadline deadline) {
    return ringproxy::SendAll(fd_, data, deadline);
  }
  // Waits for bytes: n > 0 (at most `max`) shown by Received(n) until Consume(n), 0 at
  // the end of the stream, or -errno.
  Recv Receive(size_t max, Deadline deadline) {
    return Recv(fd_, std::span<std::byte>(buf_.data(), std::min(max, buf_.size())), deadline);
  }
  std::span<const std::byte> Received(size_t n) const { return {buf_.data(), n}; }
  void Consume(size_t /*n*/) {}
  // Ends our direction (FIN); reading goes on.
  Task<IoResult> ShutdownWrite(Deadline /*deadline*/) {
    co_return IoResult{shutdown(fd_, SHUT_WR) == 0 ? 0 : -errno};
  }

 private:
  int fd_;
  std::vector<std::byte> buf_;
};

class StreamLink {
 public:
  StreamLink(ByteStream* stream, const ThreadContext* ctx) : stream_(stream), ctx_(ctx) {}

  // Sends all of `data` and waits until the kernel has it (Write alone may leave a
  // remainder in the stream that only a later Write or Flush sends: after the last
  // write of a run nothing would). Not cut at `end`: a TLS write stopped half-way would
  // leave a record half sent, and the receiver could not know where the stream ends;
  // the wait is bounded by the I/O timeout instead and the caller checks `end` between
  // writes.
  Task<IoResult> SendSome(std::span<const std::byte> data, Deadline /*end*/) {
    return WriteAll(stream_, data, IoDeadline(ctx_));
  }
  Task<IoResult> SendAll(std::span<const std::byte> data, Deadline deadline) {
    return WriteAll(stream_, data, deadline);
  }
  Task<IoResult> Receive(size_t max, Deadline deadline) {
    IoResult r = co_await stream_->Fill(deadline);
    if (r.res > 0 && static_cast<size_t>(r.res) > max) r.res = static_cast<int32_t>(max);
    co_return r;
  }
  std::span<const std::byte> Received(size_t n) const { return stream_->Peek().first(n); }
  void Consume(size_t n) { stream_->Consume(n); }
  // close_notify, then FIN; reading goes on.
  Task<IoResult> ShutdownWrite(Deadline deadline) { return stream_->ShutdownWrite(deadline); }

 private:
  ByteStream* stream_;
  const ThreadContext* ctx_;
};

// True while `fd` is open and silent, without waiting: nothing to read, no end of
// stream, no error.
inline bool SocketQuiet(int fd) {
  char c;
  const ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Receives exactly `len` bytes and checks them against the pattern at `offset`; every
// failure is counted in ctx->stats.
template <typename Link>
Task<bool> RecvExpected(ThreadContext* ctx, Link* link, uint64_t offset, size_t len) {
  size_t got = 0;
  while (got < len) {
    IoResult r = co_await link->Receive(len - got, IoDeadline(ctx));
    if (r.res == 0) {
      ctx->stats.Error("target closed the connection early", 0);
      co_return false;
    }
    if (!r.ok()) {
      ctx->stats.Error("recv", r.error());
      co_return false;
    }
    const bool same = Pattern::Get().Matches(offset + got, link->Received(r.value()));
    link->Consume(r.value());
    if (!same) {
      ctx->stats.Error("received bytes differ from those sent", 0);
      co_return false;
    }
    got += r.value();
  }
  ctx->stats.verified_bytes += len;
  co_return true;
}

// Reads the server's first line (a mail greeting) and drops it: what a mail client has
// done before it sits in the pre-auth state. False (counted) on failure. One deadline,
// and at most 4 KiB: a target that never ends its line cannot hold the connection.
template <typename Link>
Task<bool> ReadGreeting(ThreadContext* ctx, Link* link) {
  const Deadline deadline = IoDeadline(ctx);
  for (size_t seen = 0;;) {
    if (seen >= 4096) {
      ctx->stats.Error("greeting: no line end in 4096 bytes", 0);
      co_return false;
    }
    IoResult r = co_await link->Receive(512, deadline);
    if (r.res == 0) {
      ctx->stats.Error("target closed the connection before its greeting", 0);
      co_return false;
    }
    if (!r.ok()) {
      ctx->stats.Error("greeting", r.error());
      co_return false;
    }
    std::span<const std::byte> got = link->Received(r.value());
    const bool end = std::find(got.begin(), got.end(), std::byte{'\n'}) != got.end();
    link->Consume(r.value());
    ctx->stats.bytes_received += r.value();
    seen += r.value();
    if (end) co_return true;
  }
}

// Sends `len` bytes of the pattern at `offset` and checks that the same come back.
template <typename Link>
Task<bool> Exchange(ThreadContext* ctx, Link* link, uint64_t offset, size_t len) {
  IoResult s = co_await link->SendAll(Pattern::Get().At(offset, len), IoDeadline(ctx));
  if (!s.ok()) {
    ctx->stats.Error("send", s.error());
    co_return false;
  }
  const bool ok = co_await RecvExpected(ctx, link, offset, len);
  co_return ok;
}

}  // namespace ringproxy::loadgen
