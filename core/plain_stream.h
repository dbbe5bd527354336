// PlainStream: a ByteStream whose bytes are a TCP socket's bytes. Reads come from a
// multishot receive into the shard's provided buffers (RecvStream: zero-copy, bounded
// per connection); writes are non-blocking send(2) calls made at once, and only what
// the kernel cannot take at once is copied into the stream's own buffer, so a peer that
// stops reading pins no ring buffer and no caller memory. Flush waits for the socket
// through the ring with a deadline. The stream owns its descriptor.
#pragma once

#include <cstdint>
#include <string>

#include "core/buffer_ring.h"
#include "core/byte_stream.h"
#include "core/recv_stream.h"
#include "core/socket.h"

namespace ringproxy {

class PlainStream final : public ByteStream {
 public:
  PlainStream(UniqueFd fd, BufferRing* ring, RecvLimits limits = {});
  ~PlainStream() override;
  PlainStream(const PlainStream&) = delete;
  PlainStream& operator=(const PlainStream&) = delete;

  Task<IoResult> Fill(Deadline deadline) override;

  // Fill() as a plain awaiter, for callers that know the stream is plain (the pump): no
  // coroutine frame per wait, and a chunk already received completes without suspending.
  class FillAwaiter {
   public:
    bool await_ready();
    void await_suspend(std::coroutine_handle<> h) { next_.await_suspend(h); }
    IoResult await_resume();

   private:
    friend class PlainStream;
    FillAwaiter(PlainStream* s, Deadline d) : stream_(s), next_(s->recv_.Next(d)) {}
    PlainStream* stream_;
    RecvStream::NextAwaiter next_;
    IoResult now_{0};
    bool done_now_ = false;  // await_ready settled the result without the receive
  };
  FillAwaiter FillDirect(Deadline deadline) { return FillAwaiter(this, deadline); }
  std::span<const std::byte> Peek() const override;
  void Consume(size_t n) override;
  size_t buffered() const override;
  size_t DiscardBuffered() override;

  Task<IoResult> Write(std::span<const std::byte> data, Deadline deadline) override;
  IoResult WriteNow(std::span<const std::byte> data) override;
  Task<IoResult> Flush(Deadline deadline) override;
  size_t pending_output() const override { return out_.size() - out_offset_; }
  Task<IoResult> ShutdownWrite(Deadline deadline) override;

  void Abort() override;
  bool aborted() const override { return aborted_; }
  Task<void> Quiesce() override;

  PlainStream* plain() override { return this; }
  int fd() const override { return fd_.get(); }

  // For splice: ends the multishot receive, keeping what it received; the socket may
  // then be read directly. The next Fill() arms the receive again.
  Task<void> PauseReceive();
  // Without waiting or arming: makes the next received chunk visible in Peek().
  // Returns its size, 0 at end of stream, -errno, or -EAGAIN when nothing is queued.
  IoResult FillNow();

  // Moves what was received and not consumed out of the shard's ring (see
  // RecvStream::Detach); Peek() shows the same bytes. No view from Peek() may be held.
  void Detach() override;

  // The descriptor's close sends a reset (SO_LINGER 0), not a FIN: the peer learns that
  // what it got is not the whole of it. Unsent output is dropped then. An Abort() after
  // this sends the reset at once.
  void ResetOnClose();

  // See RecvStream::WatchEnd.
  void WatchPeerEnd(PeerEndObserver* observer) { recv_.WatchEnd(observer); }
  // See RecvStream::ShortenWait: a Fill() waiting now (directly or under TLS) ends by `d`.
  void ShortenWait(Deadline d) { recv_.ShortenWait(d); }
  // Appends what was received and not consumed to *out when it is at most `max`
  // bytes; false (nothing appended) if more.
  bool CopyBuffered(size_t max, std::string* out) const;

  const RecvStream& receiver() const { return recv_; }

 private:
  size_t chunk_left() const {
    return chunk_.status.res > 0 ? static_cast<size_t>(chunk_.status.res) - offset_ : 0;
  }
  void ReleaseOutput();

  UniqueFd fd_;
  RecvStream recv_;
  Received chunk_;
  size_t offset_ = 0;
  std::string out_;  // what the kernel has not taken yet (empty: no allocation)
  size_t out_offset_ = 0;
  int sends_in_flight_ = 0;  // ring sends submitted and not completed
  bool aborted_ = false;
  bool reset_on_close_ = false;
};

}  // namespace ringproxy
