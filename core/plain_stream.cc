#include "core/plain_stream.h"

#include <sys/socket.h>

#include "core/ops.h"

namespace ringproxy {

namespace {
constexpr int kSendNow = MSG_DONTWAIT | MSG_NOSIGNAL;
}  // namespace

PlainStream::PlainStream(UniqueFd fd, BufferRing* ring, RecvLimits limits)
    : fd_(std::move(fd)), recv_(*ring, fd_.get(), limits) {}

PlainStream::~PlainStream() = default;

Task<IoResult> WriteAll(ByteStream* stream, std::span<const std::byte> data, Deadline deadline) {
  IoResult w = co_await stream->Write(data, deadline);
  if (!w.ok()) co_return w;
  IoResult f = co_await stream->Flush(deadline);
  if (!f.ok()) co_return f;
  co_return w;
}

bool PlainStream::FillAwaiter::await_ready() {
  if (stream_->aborted_) {
    now_ = IoResult{-ECANCELED};
    done_now_ = true;
  } else if (size_t left = stream_->chunk_left(); left > 0) {
    now_ = IoResult{static_cast<int32_t>(left)};
    done_now_ = true;
  }
  return done_now_ || next_.await_ready();
}

IoResult PlainStream::FillAwaiter::await_resume() {
  if (done_now_) return now_;
  stream_->chunk_ = next_.await_resume();
  stream_->offset_ = 0;
  if (stream_->aborted_) return {-ECANCELED};
  return stream_->chunk_.status;
}

Task<IoResult> PlainStream::Fill(Deadline deadline) {
  IoResult r = co_await FillDirect(deadline);
  co_return r;
}

IoResult PlainStream::FillNow() {
  if (aborted_) return {-ECANCELED};
  if (size_t left = chunk_left(); left > 0) return {static_cast<int32_t>(left)};
  Received next;
  if (!recv_.TryTake(&next)) return {-EAGAIN};
  chunk_ = std::move(next);
  offset_ = 0;
  return chunk_.status;
}

std::span<const std::byte> PlainStream::Peek() const {
  if (chunk_left() == 0) return {};
  return chunk_.data().subspan(offset_);
}

void PlainStream::Consume(size_t n) {
  RP_DCHECK(n <= chunk_left());
  offset_ += n;
  if (chunk_left() == 0 && chunk_.status.res > 0) {
    chunk_ = Received();  // the ring buffer goes back now
    offset_ = 0;
  }
}

size_t PlainStream::buffered() const { return chunk_left() + recv_.buffered(); }

bool PlainStream::CopyBuffered(size_t max, std::string* out) const {
  const size_t left = chunk_left();
  if (left + recv_.buffered() > max) return false;
  if (left > 0) {
    const std::span<const std::byte> d = chunk_.data().subspan(offset_, left);
    out->append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  return recv_.CopyUntaken(max - left, out);  // fits: checked above
}

size_t PlainStream::DiscardBuffered() {
  size_t n = chunk_left();
  if (n > 0) {
    chunk_ = Received();
    offset_ = 0;
  }
  return n + recv_.Discard();
}

void PlainStream::ReleaseOutput() {
  std::string().swap(out_);  // frees the heap buffer (assigning an empty string would keep it)
  out_offset_ = 0;
}

Task<IoResult> PlainStream::Write(std::span<const std::byte> data, Deadline deadline) {
  if (aborted_) co_return IoResult{-ECANCELED};
  if (pending_output() > 0) {
    IoResult f = co_await Flush(deadline);
    if (!f.ok()) co_return f;
  }
  if (data.empty()) co_return IoResult{0};
  // A send(2) now rather than a ring send: what the caller does next follows at once,
  // not a loop turn later. A close after a last answer sends its FIN right behind the
  // data, before the peer's own close, so the TIME_WAIT stays with us (as nginx's
  // write-then-close does) instead of on the client's ports.
  IoResult r = WriteNow(data);
  if (r.res == -EAGAIN) r.res = 0;
  if (!r.ok()) co_return r;
  if (r.value() < data.size()) {
    std::span<const std::byte> rest = data.subspan(r.value());
    out_.assign(reinterpret_cast<const char*>(rest.data()), rest.size());
    out_offset_ = 0;
  }
  co_return IoResult{static_cast<int32_t>(data.size())};
}

IoResult PlainStream::WriteNow(std::span<const std::byte> data) {
  if (aborted_) return {-ECANCELED};
  // Order: nothing may overtake bytes queued here or still on their way in the ring.
  if (pending_output() > 0 || sends_in_flight_ > 0) return {-EAGAIN};
  // A plain non-blocking send(2): it never waits, and the kernel copies straight from
  // the caller's buffer (what a ring send would do a loop turn later, after a copy).
  const ssize_t n = send(fd_.get(), data.data(), data.size(), kSendNow);
  if (n < 0) return {errno == EAGAIN ? 0 : -errno};
  return {static_cast<int32_t>(n)};
}

Task<IoResult> PlainStream::Flush(Deadline deadline) {
  // The deadline bounds a wait without progress (nginx's send_timeout): a send that
  // moves bytes gives the next one the same time again, so a slow but steady reader
  // is not cut off.
  const int64_t span = deadline.finite() ? deadline.ns() - TurnNowNs() : 0;
  while (pending_output() > 0) {
    if (aborted_) co_return IoResult{-ECANCELED};
    std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(out_.data()) + out_offset_,
                                    pending_output());
    // A plain send: the ring waits for room, the linked deadline bounds the wait.
    ++sends_in_flight_;
    IoResult r = co_await Send(fd_.get(), rest, deadline);
    --sends_in_flight_;
    if (aborted_) co_return IoResult{-ECANCELED};
    if (!r.ok()) co_return r;
    if (r.res == 0) co_return IoResult{-EPIPE};
    out_offset_ += r.value();
    if (deadline.finite()) deadline = Deadline::AfterNs(span);
  }
  if (!out_.empty()) ReleaseOutput();
  co_return IoResult{0};
}

Task<IoResult> PlainStream::ShutdownWrite(Deadline deadline) {
  IoResult f = co_await Flush(deadline);
  if (!f.ok()) co_return f;
  if (shutdown(fd_.get(), SHUT_WR) != 0) co_return IoResult{-errno};
  co_return IoResult{0};
}

void PlainStream::Detach() {
  if (chunk_.buffer.valid() && chunk_left() > 0) {
    const std::span<const std::byte> d = chunk_.data().subspan(offset_, chunk_left());
    Received own;
    own.status = IoResult{static_cast<int32_t>(d.size())};
    own.spilled.assign(reinterpret_cast<const char*>(d.data()), d.size());
    chunk_ = std::move(own);  // the ring buffer goes back
    offset_ = 0;
  }
  recv_.Detach();
}

void PlainStream::ResetOnClose() {
  const linger reset{1, 0};
  setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  reset_on_close_ = true;
}

void PlainStream::Abort() {
  if (aborted_) return;
  aborted_ = true;
  recv_.Abort();
  // shutdown(2) ends whatever the kernel is waiting on for this socket (a send for
  // room, a poll for readiness); the cancel catches anything that would re-arm. With a
  // reset asked for, a disconnect does the same and sends it now: shutdown's FIN would
  // go first.
  if (reset_on_close_) {
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    connect(fd_.get(), &unspec, sizeof(unspec));
  } else {
    shutdown(fd_.get(), SHUT_RDWR);
  }
  Reactor::Current()->CancelFd(fd_.get());
}

Task<void> PlainStream::Quiesce() {
  co_await recv_.Stop();
  chunk_ = Received();
  ReleaseOutput();
}

Task<void> PlainStream::PauseReceive() { co_await recv_.Pause(); }

}  // namespace ringproxy
