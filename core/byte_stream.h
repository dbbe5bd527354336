// ByteStream: a connection's bytes, whatever carries them. Sessions, the bounded
// reader and the pump read and write through this interface and never touch a socket,
// so a plain connection, TLS over one, and a connection that turns into TLS mid-way
// (STARTTLS) are one code path. Two implementations: PlainStream (core/plain_stream.h)
// and TlsStream (tls/tls_stream.h), which runs over another ByteStream.
//
// Reading is zero-copy where the carrier allows: Fill() waits until bytes are
// available and Peek() shows them (for a plain socket, a provided ring buffer) until
// Consume() gives them back. A caller that needs to wait for more copies what it
// keeps into its own buffer first (the bounded reader does), so no ring buffer is held
// across a wait.
//
// Writing never pins the caller's memory across a wait: Write() returns once `data`
// may be reused; what the kernel could not take at once waits in the stream's own
// output buffer, and Flush() waits until that is gone too.
//
// Every wait has a deadline, and Abort() ends every wait, current and future, soon
// (a sticky flag plus shutdown(2) of the socket): stopping a session cannot be lost.
#pragma once

#include <cstddef>
#include <span>

#include "core/deadline.h"
#include "core/result.h"
#include "core/task.h"

namespace ringproxy {

class PlainStream;

class ByteStream {
 public:
  virtual ~ByteStream() = default;

  // Waits until unconsumed bytes are available and returns how many (Peek().size()),
  // 0 when the peer ended its side, -errno on an error, -ETIMEDOUT at the deadline,
  // -ECANCELED after Abort().
  virtual Task<IoResult> Fill(Deadline deadline) = 0;
  // The bytes received and not consumed; valid until the next call on the stream.
  virtual std::span<const std::byte> Peek() const = 0;
  virtual void Consume(size_t n) = 0;
  // Every byte received and not consumed yet, including what waits behind Peek().
  virtual size_t buffered() const = 0;
  // Drops all of it (STARTTLS: plaintext pipelined after the command). Returns bytes.
  virtual size_t DiscardBuffered() = 0;

  // Takes `data` (returns data.size() or -errno); see the file comment.
  virtual Task<IoResult> Write(std::span<const std::byte> data, Deadline deadline) = 0;
  // Writes what the kernel takes at once, without waiting and without copying: a
  // count (possibly short, 0 when the socket is full), or -EAGAIN when the stream has
  // output waiting (order first) or cannot write directly. For a caller whose bytes are
  // in a buffer it would otherwise copy (TLS records).
  virtual IoResult WriteNow(std::span<const std::byte> data) = 0;
  // Waits until nothing is left in the stream's own output buffer.
  virtual Task<IoResult> Flush(Deadline deadline) = 0;
  virtual size_t pending_output() const = 0;
  // Ends our direction after flushing: TLS sends close_notify, then the socket's write
  // side is shut (FIN). Reading goes on (half-close).
  virtual Task<IoResult> ShutdownWrite(Deadline deadline) = 0;
  // Ends our direction as a cut rather than an end: TLS sends no close_notify, so the
  // peer sees what the source of the bytes did (a relay passes a FIN without
  // close_notify on as one). Plain streams have no difference.
  virtual Task<IoResult> ShutdownWriteCut(Deadline deadline) { return ShutdownWrite(deadline); }
  // Before a wait on something other than this stream: what was received and not
  // consumed leaves the shard's shared receive buffers (Peek() shows the same bytes).
  // No view from Peek() may be held across it.
  virtual void Detach() {}
  // The stream ended without the protocol's end (TLS: a FIN with no close_notify).
  virtual bool truncated() const { return false; }

  // Ends every wait soon with -ECANCELED; sticky. Synchronous, for stop paths.
  virtual void Abort() = 0;
  virtual bool aborted() const = 0;
  // Waits until the kernel references nothing of this stream; call (with no Fill,
  // Write or Flush in progress) before destroying it.
  virtual Task<void> Quiesce() = 0;

  // The stream itself when its bytes are the socket's bytes (splice may bypass it),
  // else nullptr.
  virtual PlainStream* plain() = 0;
  // The socket underneath, for logs and readiness.
  virtual int fd() const = 0;
};

// Write() then Flush(): everything is in the kernel when this returns.
Task<IoResult> WriteAll(ByteStream* stream, std::span<const std::byte> data, Deadline deadline);

}  // namespace ringproxy
