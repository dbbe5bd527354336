// TlsStream: a ByteStream that is TLS over another ByteStream (a PlainStream, which
// may have carried plaintext before: STARTTLS). wolfSSL never touches the socket: its
// per-session I/O callbacks take ciphertext from the transport's Peek() and hand
// ciphertext to our own buffer, which goes to the transport's Write(); every wait is
// the transport's, with the caller's deadline, so WANT_READ never blocks the reactor
// and Abort()/deadlines reach TLS sessions exactly as plain ones.
//
// At rest (no record in flight) the stream holds no record buffer of its own: the
// plaintext buffer is allocated while a record's bytes wait for the consumer and the
// ciphertext buffer only while a write is on its way to the transport.
//
// Closing: ShutdownWrite() sends close_notify before the transport's FIN (RFC 8446
// §6.1) and reading goes on (half-close). A peer's close_notify reads as end of
// stream; a transport EOF without one also does (most clients skip it) and is
// counted in truncated().
#pragma once

#include <coroutine>
#include <cstdint>
#include <memory>
#include <string>

#include "core/byte_stream.h"

struct WOLFSSL;

namespace ringproxy {

class TlsStream final : public ByteStream {
 public:
  enum class Role : uint8_t { kServer, kClient };

  // Takes `ssl` (freed with the stream); sets its I/O callbacks. The transport must
  // outlive the stream.
  TlsStream(ByteStream* transport, WOLFSSL* ssl, Role role);
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Runs the handshake to the end: 0, -ETIMEDOUT, -ECANCELED, -ECONNRESET (the peer
  // left), or -EPROTO (TLS failed: error_text() says why; any alert was sent).
  Task<IoResult> Handshake(Deadline deadline);

  Task<IoResult> Fill(Deadline deadline) override;
  std::span<const std::byte> Peek() const override;
  void Consume(size_t n) override;
  size_t buffered() const override;
  size_t DiscardBuffered() override;

  Task<IoResult> Write(std::span<const std::byte> data, Deadline deadline) override;
  IoResult WriteNow(std::span<const std::byte> /*data*/) override { return {-EAGAIN}; }
  Task<IoResult> Flush(Deadline deadline) override;
  size_t pending_output() const override;
  Task<IoResult> ShutdownWrite(Deadline deadline) override;

  void Abort() override;
  // Its transport's abort too: a reader that retries someone else's cancel (the pump)
  // would otherwise spin on a transport that fails every read at once.
  bool aborted() const override { return aborted_ || transport_->aborted(); }
  Task<void> Quiesce() override;
  PlainStream* plain() override { return nullptr; }
  int fd() const override { return transport_->fd(); }

  // After the handshake, for logs: "TLSv1.3 TLS_AES_128_GCM_SHA256", resumed or not,
  // the name the client asked for, the ALPN protocol chosen.
  std::string_view version() const;
  std::string_view cipher() const;
  bool resumed() const;
  std::string_view server_name() const { return server_name_; }
  std::string_view alpn() const;
  // Why the last TLS call failed (handshake, read, write), for the log.
  const std::string& error_text() const { return error_text_; }
  bool truncated() const override { return truncated_; }
  // Records received and not decrypted yet wait in the transport.
  void Detach() override { transport_->Detach(); }
  Task<IoResult> ShutdownWriteCut(Deadline deadline) override;
  WOLFSSL* ssl() const { return ssl_; }
  // Nothing decrypted waits, and what the transport holds is whole records too short
  // to carry an HTTP request (an alert such as close_notify, a KeyUpdate): a peer that
  // ended after them left nothing to answer.
  bool OnlyShortRecordsLeft() const;

 private:
  static int IoRecv(WOLFSSL* ssl, char* buf, int size, void* ctx);
  static int IoSend(WOLFSSL* ssl, char* buf, int size, void* ctx);
  enum class SendUntil {
    kIfIdle,  // queued records handed on, unless another coroutine sends (it takes them)
    // As kIfIdle, and never waits on the transport: when earlier bytes are still stuck
    // there, the records stay queued for the writer that must flush those (a reader's
    // KeyUpdate answer; flushing them under the read deadline would hold the writer).
    kNoWait,
    kFlushed,   // after any other sender: everything queued, and the transport sent it all
    kShutdown,  // the same, and then the transport's write side is shut
  };
  // The only place ciphertext leaves and the transport's sending side is called: one
  // coroutine at a time (its Write waits only while earlier bytes are still queued).
  Task<IoResult> Send(Deadline deadline, SendUntil until);
  IoResult Failed(int ret);
  void ReleasePlaintext();

  ByteStream* transport_;
  WOLFSSL* ssl_;
  Role role_;
  // Decrypted, not consumed yet. Kept from record to record while ciphertext is
  // already buffered behind it, freed otherwise: at rest the stream holds no buffer.
  std::unique_ptr<char[]> plaintext_;
  size_t plaintext_len_ = 0;
  size_t plaintext_off_ = 0;
  std::string ciphertext_;               // produced by wolfSSL, not handed to the transport yet
  size_t answers_unsent_ = 0;            // of it, what reads produced (kMaxUnsentAnswers)
  bool sending_ = false;                 // a Send is calling the transport
  std::coroutine_handle<> idle_waiter_;  // waits for sending_ to clear
  bool transport_eof_ = false;
  bool close_notify_sent_ = false;
  bool write_shut_ = false;  // close_notify and FIN are out: nothing more can be sent
  bool aborted_ = false;
  bool truncated_ = false;
  std::string error_text_;
  std::string server_name_;  // what the client asked for (SNI), server side
};

}  // namespace ringproxy
