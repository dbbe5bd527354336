#include "tls/tls_stream.h"

// options.h first: it carries the build's feature macros and struct layout choices.
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <algorithm>
#include <cstring>

#include "core/plain_stream.h"
#include "core/reactor.h"
#include "core/socket.h"
#include "tls/error_text.h"
#include "tls/server_context.h"

namespace ringproxy {

namespace {

// One TLS record's worth of plaintext at most per read and per write.
constexpr size_t kRecord = 16384;
// Records at least this large are written to the kernel from wolfSSL's buffer at once;
// small ones are queued and go through the ring, batched, without a system call each.
constexpr size_t kDirectSend = 4096;
// Records our reads produced (answers to TLS 1.3 KeyUpdate requests) that the peer has
// not let go out: hundreds of answers. A peer that asks for more without reading them
// would otherwise grow this queue without end.
constexpr size_t kMaxUnsentAnswers = 16384;

}  // namespace

TlsStream::TlsStream(ByteStream* transport, WOLFSSL* ssl, Role role)
    : transport_(transport), ssl_(ssl), role_(role) {
  wolfSSL_SSLSetIORecv(ssl_, &TlsStream::IoRecv);
  wolfSSL_SSLSetIOSend(ssl_, &TlsStream::IoSend);
  wolfSSL_SetIOReadCtx(ssl_, this);
  wolfSSL_SetIOWriteCtx(ssl_, this);
}

TlsStream::~TlsStream() { wolfSSL_free(ssl_); }

int TlsStream::IoRecv(WOLFSSL* /*ssl*/, char* buf, int size, void* ctx) {
  auto* self = static_cast<TlsStream*>(ctx);
  std::span<const std::byte> in = self->transport_->Peek();
  // Never CONN_CLOSE, even after the transport's end: wolfSSL would mark the session
  // closed and no longer send our close_notify (Fill tells the end itself).
  if (in.empty()) return WOLFSSL_CBIO_ERR_WANT_READ;
  const size_t n = std::min(in.size(), static_cast<size_t>(size));
  memcpy(buf, in.data(), n);
  self->transport_->Consume(n);
  return static_cast<int>(n);
}

int TlsStream::IoSend(WOLFSSL* /*ssl*/, char* buf, int size, void* ctx) {
  auto* self = static_cast<TlsStream*>(ctx);
  size_t taken = 0;
  // A full record goes to the kernel straight from wolfSSL's buffer when nothing is
  // queued before it: one copy fewer than queueing it, and no wait for a loop turn.
  if (size >= static_cast<int>(kDirectSend) && !self->sending_ && self->ciphertext_.empty()) {
    IoResult n = self->transport_->WriteNow(
        {reinterpret_cast<const std::byte*>(buf), static_cast<size_t>(size)});
    if (n.res > 0) taken = n.value();
  }
  // The rest is always taken: back-pressure is the transport's (Flush before more).
  self->ciphertext_.append(buf + taken, static_cast<size_t>(size) - taken);
  return size;
}

Task<IoResult> TlsStream::Send(Deadline deadline, SendUntil until) {
  // The stream may be read and written by two coroutines at once (the pump's two
  // directions), and a read can queue records too (a TLS 1.3 KeyUpdate answer). The
  // transport keeps one queue of unsent bytes that one sender drains: every call on its
  // sending side happens here, under sending_.
  const bool if_idle = until == SendUntil::kIfIdle || until == SendUntil::kNoWait;
  if (sending_ && if_idle) co_return IoResult{0};  // the sender takes it
  // As for the transport's Flush: the deadline bounds a wait without progress; each
  // batch that went out gives the next one the same time again.
  const int64_t span = deadline.finite() ? deadline.ns() - TurnNowNs() : 0;
  auto renew = [&deadline, span] {
    if (deadline.finite()) deadline = Deadline::AfterNs(span);
  };
  while (sending_) {
    struct IdleAwaiter {
      TlsStream* s;
      bool await_ready() const { return !s->sending_; }
      void await_suspend(std::coroutine_handle<> h) {
        RP_DCHECK(!s->idle_waiter_);
        s->idle_waiter_ = h;
      }
      void await_resume() const {}
    };
    co_await IdleAwaiter{this};
  }
  sending_ = true;
  IoResult w{0};
  for (;;) {
    while (!ciphertext_.empty() && w.ok()) {
      if (until == SendUntil::kNoWait && transport_->pending_output() > 0) break;
      std::string batch;
      batch.swap(ciphertext_);
      answers_unsent_ = 0;
      w = co_await transport_->Write(AsBytes(batch), deadline);
      if (w.ok()) renew();
    }
    if (!w.ok() || if_idle) break;
    if (transport_->pending_output() > 0) {
      w = co_await transport_->Flush(deadline);
      if (w.ok()) renew();
      continue;  // records queued meanwhile go too
    }
    if (until == SendUntil::kShutdown) w = co_await transport_->ShutdownWrite(deadline);
    break;
  }
  sending_ = false;
  if (idle_waiter_) Reactor::Current()->Post(std::exchange(idle_waiter_, {}));
  co_return w.ok() ? IoResult{0} : w;
}

IoResult TlsStream::Failed(int ret) {
  error_text_ = TlsErrorText(ssl_, ret);
  return {-EPROTO};
}

Task<IoResult> TlsStream::Handshake(Deadline deadline) {
  bool noted = role_ == Role::kClient;
  for (;;) {
    if (aborted_) co_return IoResult{-ECANCELED};
    if (!noted && !transport_->Peek().empty()) {
      // The start of the ClientHello decides between a name's ECDSA and RSA pairs.
      std::span<const std::byte> hello = transport_->Peek();
      TlsServerShardContext::NoteClientHello(ssl_, reinterpret_cast<const uint8_t*>(hello.data()),
                                             hello.size());
      noted = true;
    }
    const int ret = role_ == Role::kServer ? wolfSSL_accept(ssl_) : wolfSSL_connect(ssl_);
    const int err = ret == WOLFSSL_SUCCESS ? 0 : wolfSSL_get_error(ssl_, ret);
    if (role_ == Role::kServer && server_name_.empty()) {
      // Kept now: wolfSSL frees the ClientHello's extensions when the handshake ends.
      void* name = nullptr;
      const uint16_t len = wolfSSL_SNI_GetRequest(ssl_, WOLFSSL_SNI_HOST_NAME, &name);
      if (name != nullptr && len > 0) server_name_.assign(static_cast<const char*>(name), len);
    }
    // Read before the wait below, in which other sessions use the library.
    const bool failed = ret != WOLFSSL_SUCCESS && err != WOLFSSL_ERROR_WANT_READ;
    const IoResult failure = failed ? Failed(ret) : IoResult{0};
    // Our flight (or the alert that ends a failed handshake) goes out either way, and
    // whole before we wait: the peer answers only once it has all of it.
    IoResult sent = co_await Send(deadline, SendUntil::kFlushed);
    if (failed) co_return failure;
    if (ret == WOLFSSL_SUCCESS) co_return sent.ok() ? IoResult{0} : sent;
    if (!sent.ok()) co_return sent;
    IoResult r = co_await transport_->Fill(deadline);
    if (r.res == 0) {
      error_text_ = "the peer closed the connection during the handshake";
      co_return IoResult{-ECONNRESET};
    }
    if (!r.ok()) co_return r;
  }
}

void TlsStream::ReleasePlaintext() {
  plaintext_.reset();
  plaintext_len_ = 0;
  plaintext_off_ = 0;
}

Task<IoResult> TlsStream::Fill(Deadline deadline) {
  if (aborted_) co_return IoResult{-ECANCELED};
  if (plaintext_off_ < plaintext_len_) {
    co_return IoResult{static_cast<int32_t>(plaintext_len_ - plaintext_off_)};
  }
  for (;;) {
    if (!plaintext_) plaintext_ = std::make_unique_for_overwrite<char[]>(kRecord);
    const size_t queued = ciphertext_.size();
    const int n = wolfSSL_read(ssl_, plaintext_.get(), static_cast<int>(kRecord));
    answers_unsent_ += ciphertext_.size() > queued ? ciphertext_.size() - queued : 0;
    if (n > 0) {
      plaintext_len_ = static_cast<size_t>(n);
      plaintext_off_ = 0;
      co_return IoResult{n};
    }
    const int err = wolfSSL_get_error(ssl_, n);
    plaintext_len_ = plaintext_off_ = 0;
    // About to wait for the transport: hold no buffer across the wait.
    if (transport_->buffered() == 0) ReleasePlaintext();
    // A read may have produced records to send (a TLS 1.3 KeyUpdate answer). Once our
    // side has ended they cannot go (the socket is shut for writing): dropped, and the
    // peer's half goes on being read.
    if (write_shut_) {
      ciphertext_.clear();
      answers_unsent_ = 0;
    } else {
      IoResult sent = co_await Send(deadline, SendUntil::kNoWait);
      if (!sent.ok()) co_return sent;
      if (answers_unsent_ > kMaxUnsentAnswers) {
        error_text_ = "the peer asks for TLS key updates and does not read the answers";
        co_return IoResult{-EPROTO};
      }
    }
    if (err == WOLFSSL_ERROR_ZERO_RETURN) co_return IoResult{0};  // close_notify
    if (err == WOLFSSL_ERROR_WANT_READ) {
      if (aborted_) co_return IoResult{-ECANCELED};
      if (transport_eof_) {
        // FIN without close_notify (and wolfSSL has used what came before it, maybe
        // part of a record): an end of stream for the proxy, but noted.
        truncated_ = true;
        co_return IoResult{0};
      }
      IoResult r = co_await transport_->Fill(deadline);
      if (r.res == 0) {
        transport_eof_ = true;  // wolfSSL reads what is left; then the end is told
        continue;
      }
      if (!r.ok()) co_return r;
      continue;
    }
    co_return Failed(n);
  }
}

bool TlsStream::OnlyShortRecordsLeft() const {
  // A record's payload is the plaintext plus at least 17 bytes (TLS 1.3: content type
  // and tag; 1.2 with AES-GCM: 24), and the shortest request line and end of head
  // ("GET / HTTP/1.0" CRLF CRLF) is 18 bytes: a payload up to 26 bytes holds no request.
  constexpr size_t kShortPayload = 26;
  constexpr size_t kMaxLooked = 256;
  if (plaintext_len_ > plaintext_off_ || wolfSSL_pending(ssl_) > 0) return false;
  const PlainStream* plain = transport_->plain();
  std::string bytes;
  if (plain == nullptr || !plain->CopyBuffered(kMaxLooked, &bytes)) return false;
  for (size_t at = 0; at < bytes.size();) {
    if (bytes.size() - at < 5) return false;  // part of a record
    const auto type = static_cast<uint8_t>(bytes[at]);
    const size_t len =
        (size_t{static_cast<uint8_t>(bytes[at + 3])} << 8) | static_cast<uint8_t>(bytes[at + 4]);
    constexpr uint8_t kAlert = 21, kApplicationData = 23;
    if ((type != kAlert && type != kApplicationData) || len > kShortPayload ||
        bytes.size() - at - 5 < len) {
      return false;
    }
    at += 5 + len;
  }
  return true;
}

std::span<const std::byte> TlsStream::Peek() const {
  if (!plaintext_) return {};
  return {reinterpret_cast<const std::byte*>(plaintext_.get()) + plaintext_off_,
          plaintext_len_ - plaintext_off_};
}

void TlsStream::Consume(size_t n) {
  plaintext_off_ += n;
  if (plaintext_off_ >= plaintext_len_) {
    plaintext_len_ = plaintext_off_ = 0;
    // Kept only while the next record is already here; a consumer that goes on to
    // wait for something else must not hold it.
    if (transport_->buffered() == 0) ReleasePlaintext();
  }
}

size_t TlsStream::buffered() const {
  // Decrypted bytes, then what wolfSSL or the transport holds (ciphertext counted as
  // is: the exact plaintext length of an undecrypted record is not known yet).
  return (plaintext_len_ - plaintext_off_) + static_cast<size_t>(wolfSSL_pending(ssl_)) +
         transport_->buffered();
}

size_t TlsStream::DiscardBuffered() {
  const size_t n = buffered();
  ReleasePlaintext();
  transport_->DiscardBuffered();
  return n;
}

Task<IoResult> TlsStream::Write(std::span<const std::byte> data, Deadline deadline) {
  if (aborted_) co_return IoResult{-ECANCELED};
  size_t done = 0;
  while (done < data.size()) {
    const size_t n = std::min(kRecord, data.size() - done);
    // The send callback always takes everything, so wolfSSL_write never asks to be
    // retried with the same buffer: once it returns, `data` is no longer needed.
    const int w = wolfSSL_write(ssl_, data.data() + done, static_cast<int>(n));
    if (w <= 0) {
      IoResult failure = Failed(w);
      (void)co_await Send(deadline, SendUntil::kIfIdle);
      co_return failure;
    }
    done += static_cast<size_t>(w);
  }
  IoResult sent = co_await Send(deadline, SendUntil::kIfIdle);
  if (!sent.ok()) co_return sent;
  co_return IoResult{static_cast<int32_t>(data.size())};
}

Task<IoResult> TlsStream::Flush(Deadline deadline) {
  IoResult f = co_await Send(deadline, SendUntil::kFlushed);
  co_return f;
}

size_t TlsStream::pending_output() const {
  return ciphertext_.size() + transport_->pending_output();
}

Task<IoResult> TlsStream::ShutdownWrite(Deadline deadline) {
  if (aborted_) co_return IoResult{-ECANCELED};
  if (!close_notify_sent_) {
    close_notify_sent_ = true;
    // Queues close_notify through the send callback; reading goes on afterwards.
    (void)wolfSSL_shutdown(ssl_);
  }
  IoResult s = co_await Send(deadline, SendUntil::kShutdown);
  if (s.ok()) write_shut_ = true;
  co_return s;
}

Task<IoResult> TlsStream::ShutdownWriteCut(Deadline deadline) {
  if (aborted_) co_return IoResult{-ECANCELED};
  close_notify_sent_ = true;  // nor later: the cut is what the peer must see
  IoResult s = co_await Send(deadline, SendUntil::kShutdown);
  if (s.ok()) write_shut_ = true;
  co_return s;
}

void TlsStream::Abort() {
  aborted_ = true;
  transport_->Abort();
}

Task<void> TlsStream::Quiesce() {
  co_await transport_->Quiesce();
  ReleasePlaintext();
  std::string().swap(ciphertext_);
  answers_unsent_ = 0;
}

std::string_view TlsStream::version() const {
  const char* v = wolfSSL_get_version(ssl_);
  return v != nullptr ? v : "";
}

std::string_view TlsStream::cipher() const {
  const char* c = wolfSSL_get_cipher_name(ssl_);
  return c != nullptr ? c : "";
}

bool TlsStream::resumed() const { return wolfSSL_session_reused(ssl_) == 1; }

std::string_view TlsStream::alpn() const {
  char* protocol = nullptr;
  uint16_t len = 0;
  if (wolfSSL_ALPN_GetProtocol(ssl_, &protocol, &len) != WOLFSSL_SUCCESS || protocol == nullptr) {
    return {};
  }
  return {protocol, len};
}

}  // namespace ringproxy
