// TlsStream over PlainStream over real loopback sockets, both ends in one reactor: the
// handshake (and its deadline), byte-exact data both ways at once, half-close with
// close_notify, a plaintext client, abort in a wait, the pump between TLS and plain,
// and what an established session holds at rest.
#include "tls/tls_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <string>
#include <utility>

#include "core/ops.h"
#include "core/plain_stream.h"
#include "core/pump.h"
#include "core/sync.h"
#include "tests/test_util.h"
#include "tests/tls/tls_testing.h"
#include "tls/client_context.h"
#include "tls/library.h"
#include "tls/server_context.h"
#include "tls/ticket_keys.h"

namespace ringproxy {
namespace {

using testing::KeyType;
using testing::TempDir;
using testing::TestPki;

class TlsStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(InitTlsLibrary().ok());
    dir_ = new TempDir();
    dir_->WritePair("server", TestPki::Shared().Issue({"localhost"}, KeyType::kEcdsaP256));
    dir_->Write("ca.pem", TestPki::Shared().ca_pem());
  }
  static void TearDownTestSuite() { delete dir_; }

  void SetUp() override {
    reactor_ = testing::MakeReactor();
    ASSERT_NE(reactor_, nullptr);
    auto ring = BufferRing::Create(*reactor_, 5, 256, 16384);
    ASSERT_TRUE(ring.ok());
    ring_ = std::move(*ring);
    uint8_t secret[TicketKeys::kMasterSecretBytes] = {7};
    TlsServerSettings s;
    s.certificate = dir_->path() + "/server.crt";
    s.key = dir_->path() + "/server.key";
    auto context = TlsServerContext::Create(s, TicketKeys::FromSecret(secret, 3600));
    ASSERT_TRUE(context.ok()) << context.status().message();
    auto shard = TlsServerShardContext::Create(*context);
    ASSERT_TRUE(shard.ok());
    server_ctx_ = std::move(*shard);
    TlsClientSettings c;
    c.ca_file = dir_->path() + "/ca.pem";
    c.server_name = "localhost";
    auto client = TlsClientContext::Create(c);
    ASSERT_TRUE(client.ok()) << client.status().message();
    auto client_shard = TlsClientShardContext::Create(*client);
    ASSERT_TRUE(client_shard.ok());
    client_ctx_ = std::move(*client_shard);
  }
  void TearDown() override { EXPECT_EQ(ring_->in_use(), 0u); }

  static TempDir* dir_;
  std::unique_ptr<Reactor> reactor_;
  std::unique_ptr<BufferRing> ring_;
  std::unique_ptr<TlsServerShardContext> server_ctx_;
  std::unique_ptr<TlsClientShardContext> client_ctx_;
};

TempDir* TlsStreamTest::dir_ = nullptr;

// Both ends of one TLS connection in this process.
struct Ends {
  Ends(UniqueFd c, UniqueFd s, BufferRing* ring, WOLFSSL* client_ssl, WOLFSSL* server_ssl)
      : client_plain(std::move(c), ring),
        server_plain(std::move(s), ring),
        client(&client_plain, client_ssl, TlsStream::Role::kClient),
        server(&server_plain, server_ssl, TlsStream::Role::kServer) {}
  PlainStream client_plain;
  PlainStream server_plain;
  TlsStream client;
  TlsStream server;
};

Task<void> HandshakeOne(TlsStream* s, IoResult* out, Gate::Holder) {
  *out = co_await s->Handshake(Deadline::AfterMs(5000));
}

Task<bool> HandshakeBoth(Ends* e) {
  IoResult c, s;
  Gate gate;
  Spawn(HandshakeOne(&e->client, &c, gate.Enter()));
  Spawn(HandshakeOne(&e->server, &s, gate.Enter()));
  co_await gate.Wait();
  EXPECT_EQ(c.res, 0) << e->client.error_text();
  EXPECT_EQ(s.res, 0) << e->server.error_text();
  co_return c.res == 0 && s.res == 0;
}

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (auto& ch : s) {
    x = x * 1664525u + 1013904223u;
    ch = static_cast<char>(x >> 24);
  }
  return s;
}

// Sends `data` in uneven pieces, then ends its side.
Task<void> SendAllThenShut(ByteStream* s, const std::string* data, Gate::Holder) {
  size_t off = 0, piece = 1;
  while (off < data->size()) {
    const size_t n = std::min(piece, data->size() - off);
    IoResult w = co_await WriteAll(s, AsBytes(std::string_view(*data).substr(off, n)),
                                   Deadline::AfterMs(10000));
    EXPECT_TRUE(w.ok());
    if (!w.ok()) break;
    off += n;
    piece = piece * 3 % 70000 + 1;
  }
  IoResult shut = co_await s->ShutdownWrite(Deadline::AfterMs(10000));
  EXPECT_TRUE(shut.ok());
}

Task<void> ReadToEnd(ByteStream* s, std::string* out, Gate::Holder) {
  for (;;) {
    IoResult r = co_await s->Fill(Deadline::AfterMs(10000));
    if (r.res <= 0) {
      EXPECT_EQ(r.res, 0);
      break;
    }
    std::span<const std::byte> d = s->Peek();
    out->append(reinterpret_cast<const char*>(d.data()), d.size());
    s->Consume(d.size());
  }
}

Task<void> Exchange(Ends* e, const std::string* a, const std::string* b, std::string* at_server,
                    std::string* at_client) {
  if (!co_await HandshakeBoth(e)) co_return;
  Gate gate;
  Spawn(SendAllThenShut(&e->client, a, gate.Enter()));
  Spawn(SendAllThenShut(&e->server, b, gate.Enter()));
  Spawn(ReadToEnd(&e->server, at_server, gate.Enter()));
  Spawn(ReadToEnd(&e->client, at_client, gate.Enter()));
  co_await gate.Wait();
  co_await e->client.Quiesce();
  co_await e->server.Quiesce();
}

TEST_F(TlsStreamTest, BothDirectionsAtOnceAreByteExactAndEndWithCloseNotify) {
  auto [c, s] = testing::TcpPair();
  Ends e(std::move(c), std::move(s), ring_.get(), client_ctx_->NewSession(),
         server_ctx_->NewSession());
  const std::string a = Pattern(8 << 20, 1), b = Pattern(8 << 20, 2);
  std::string at_server, at_client;
  RunUntilComplete(*reactor_, Exchange(&e, &a, &b, &at_server, &at_client));
  EXPECT_TRUE(at_server == a) << at_server.size();
  EXPECT_TRUE(at_client == b) << at_client.size();
  EXPECT_EQ(e.server.version(), "TLSv1.3");
  // Each side saw the other's close_notify, not a bare FIN.
  EXPECT_FALSE(e.server.truncated());
  EXPECT_FALSE(e.client.truncated());
}

// Half-close: the client ends its side (with close_notify, or a bare FIN as most
// clients do); the server still answers after the end, and ends with close_notify.
Task<std::string> HalfClose(Ends* e, bool bare_fin = false) {
  if (!co_await HandshakeBoth(e)) co_return "";
  IoResult w = co_await WriteAll(&e->client, AsBytes("request"), Deadline::AfterMs(2000));
  EXPECT_TRUE(w.ok());
  if (bare_fin) {
    EXPECT_EQ(::shutdown(e->client_plain.fd(), SHUT_WR), 0);
  } else {
    EXPECT_TRUE((co_await e->client.ShutdownWrite(Deadline::AfterMs(2000))).ok());
  }
  std::string req;
  Gate gate;
  Spawn(ReadToEnd(&e->server, &req, gate.Enter()));
  co_await gate.Wait();
  EXPECT_EQ(req, "request");
  EXPECT_EQ(e->server.truncated(), bare_fin);
  w = co_await WriteAll(&e->server, AsBytes("response"), Deadline::AfterMs(2000));
  EXPECT_TRUE(w.ok());
  IoResult shut = co_await e->server.ShutdownWrite(Deadline::AfterMs(2000));
  EXPECT_TRUE(shut.ok());
  std::string resp;
  Spawn(ReadToEnd(&e->client, &resp, gate.Enter()));
  co_await gate.Wait();
  co_await e->client.Quiesce();
  co_await e->server.Quiesce();
  co_return resp;
}

TEST_F(TlsStreamTest, HalfCloseSendsCloseNotifyAndTheOtherSideStillAnswers) {
  auto [c, s] = testing::TcpPair();
  Ends e(std::move(c), std::move(s), ring_.get(), client_ctx_->NewSession(),
         server_ctx_->NewSession());
  EXPECT_EQ(RunUntilComplete(*reactor_, HalfClose(&e)), "response");
  EXPECT_FALSE(e.server.truncated());
}

TEST_F(TlsStreamTest, AfterThePeersBareFinOurEndStillSendsCloseNotify) {
  auto [c, s] = testing::TcpPair();
  Ends e(std::move(c), std::move(s), ring_.get(), client_ctx_->NewSession(),
         server_ctx_->NewSession());
  EXPECT_EQ(RunUntilComplete(*reactor_, HalfClose(&e, /*bare_fin=*/true)), "response");
  EXPECT_FALSE(e.client.truncated()) << "the answer ended with a bare FIN";
}

Task<IoResult> ServerHandshakeOnly(TlsStream* s, int64_t ms) {
  IoResult r = co_await s->Handshake(Deadline::AfterMs(ms));
  co_await s->Quiesce();
  co_return r;
}

TEST_F(TlsStreamTest, ASilentClientIsCutAtTheHandshakeDeadline) {
  auto [c, s] = testing::TcpPair();
  PlainStream plain(std::move(s), ring_.get());
  TlsStream server(&plain, server_ctx_->NewSession(), TlsStream::Role::kServer);
  int64_t start = MonotonicNowNs();
  EXPECT_EQ(RunUntilComplete(*reactor_, ServerHandshakeOnly(&server, 150)).res, -ETIMEDOUT);
  EXPECT_LT((MonotonicNowNs() - start) / 1'000'000, 2000);
}

Task<bool> HandshakeBothThenQuiesce(Ends* e) {
  const bool ok = co_await HandshakeBoth(e);
  co_await e->client.Quiesce();
  co_await e->server.Quiesce();
  co_return ok;
}

TEST_F(TlsStreamTest, AFlightLargerThanTheSocketBuffersIsSentWholeBeforeWaiting) {
  // A long chain (the CA repeated) makes the server's flight larger than what small
  // socket buffers take at once: the rest must go out while the server waits.
  TempDir dir;
  const testing::TestPair leaf = TestPki::Shared().Issue({"localhost"}, KeyType::kRsa2048);
  std::string chain = leaf.certificate;
  for (int i = 0; i < 8; ++i) chain += TestPki::Shared().ca_pem();
  dir.Write("chain.crt", chain);
  dir.Write("chain.key", leaf.key);
  TlsServerSettings settings;
  settings.certificate = dir.path() + "/chain.crt";
  settings.key = dir.path() + "/chain.key";
  uint8_t secret[TicketKeys::kMasterSecretBytes] = {7};
  auto context = TlsServerContext::Create(settings, TicketKeys::FromSecret(secret, 3600));
  ASSERT_TRUE(context.ok()) << context.status().message();
  auto shard = TlsServerShardContext::Create(*context);
  ASSERT_TRUE(shard.ok());

  uint16_t port = 0;
  UniqueFd listener = testing::ListenLoopback(&port);
  UniqueFd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int small = 1;  // the kernel's minimum
  setsockopt(client.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  testing::SetBlocking(listener.get());
  UniqueFd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  ASSERT_TRUE(server.valid());
  setsockopt(server.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  fcntl(client.get(), F_SETFL, fcntl(client.get(), F_GETFL) | O_NONBLOCK);
  Ends e(std::move(client), std::move(server), ring_.get(), client_ctx_->NewSession(),
         (*shard)->NewSession());
  EXPECT_TRUE(RunUntilComplete(*reactor_, HandshakeBothThenQuiesce(&e)));
}

TEST_F(TlsStreamTest, APlaintextClientFailsTheHandshakeWithAReason) {
  auto [c, s] = testing::TcpPair();
  ASSERT_EQ(send(c.get(), "GET / HTTP/1.0\r\n\r\n", 18, 0), 18);
  PlainStream plain(std::move(s), ring_.get());
  TlsStream server(&plain, server_ctx_->NewSession(), TlsStream::Role::kServer);
  EXPECT_EQ(RunUntilComplete(*reactor_, ServerHandshakeOnly(&server, 2000)).res, -EPROTO);
  EXPECT_FALSE(server.error_text().empty());
}

Task<IoResult> FillThenAbort(Ends* e) {
  if (!co_await HandshakeBoth(e)) co_return IoResult{0};
  Gate gate;
  auto aborter = [](Gate::Holder, TlsStream* s) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(30));
    s->Abort();
  };
  Spawn(aborter(gate.Enter(), &e->server));
  IoResult r = co_await e->server.Fill(Deadline::Never());
  co_await gate.Wait();
  co_await e->client.Quiesce();
  co_await e->server.Quiesce();
  co_return r;
}

Task<std::pair<bool, IoResult>> AbortTheTransport(Ends* e) {
  if (!co_await HandshakeBoth(e)) co_return std::pair<bool, IoResult>{false, IoResult{0}};
  e->server_plain.Abort();  // under the TLS stream, as a stop path might
  IoResult r = co_await e->server.Fill(Deadline::AfterMs(2000));
  const bool aborted = e->server.aborted();
  co_await e->client.Quiesce();
  co_await e->server.Quiesce();
  co_return std::pair<bool, IoResult>{aborted, r};
}

TEST_F(TlsStreamTest, AnAbortedTransportMakesTheStreamAborted) {
  auto [c, s] = testing::TcpPair();
  Ends e(std::move(c), std::move(s), ring_.get(), client_ctx_->NewSession(),
         server_ctx_->NewSession());
  const auto [aborted, r] = RunUntilComplete(*reactor_, AbortTheTransport(&e));
  EXPECT_TRUE(r.cancelled()) << r.res;
  EXPECT_TRUE(aborted) << "a pump would retry this read for ever";
}

TEST_F(TlsStreamTest, AbortEndsAWaitingRead) {
  auto [c, s] = testing::TcpPair();
  Ends e(std::move(c), std::move(s), ring_.get(), client_ctx_->NewSession(),
         server_ctx_->NewSession());
  EXPECT_LT(RunUntilComplete(*reactor_, FillThenAbort(&e)).res, 0);
}

// The server's writer waits in Flush for a client that does not read; meanwhile its
// reader answers the client's KeyUpdate, which queues a record too. One coroutine at a
// time may drive the transport's send queue: two flushing the same bytes sent them
// twice (and read freed memory), and the client's decryption failed.
Task<void> FlushServer(TlsStream* s, IoResult* out, Gate::Holder) {
  *out = co_await s->Flush(Deadline::AfterMs(10000));
}

Task<void> ReadServer(TlsStream* s, std::string* out, Gate::Holder) {
  IoResult r = co_await s->Fill(Deadline::AfterMs(10000));
  EXPECT_EQ(r.res, 5) << s->error_text();
  if (r.res > 0) {
    out->assign(reinterpret_cast<const char*>(s->Peek().data()), s->Peek().size());
    s->Consume(s->Peek().size());
  }
}

// `answer_first`: the reader answers while nobody sends (the writer's bytes wait in the
// transport), and the writer's Flush comes after and must carry the answer too.
Task<std::string> KeyUpdateWhileFlushing(Ends* e, WOLFSSL* client_ssl, const std::string* big,
                                         IoResult* flushed, std::string* read,
                                         bool answer_first = false) {
  if (!co_await HandshakeBoth(e)) co_return "";
  IoResult w = co_await e->server.Write(AsBytes(*big), Deadline::AfterMs(10000));
  EXPECT_TRUE(w.ok());
  EXPECT_GT(e->server.pending_output(), 0u) << "the client's socket took it all";
  Gate gate;
  if (!answer_first) Spawn(FlushServer(&e->server, flushed, gate.Enter()));
  Spawn(ReadServer(&e->server, read, gate.Enter()));
  EXPECT_EQ(wolfSSL_update_keys(client_ssl), WOLFSSL_SUCCESS);
  IoResult sent = co_await e->client.Flush(Deadline::AfterMs(2000));
  EXPECT_TRUE(sent.ok());
  co_await Sleep(Deadline::AfterMs(100));  // the server's reader answers it now
  if (answer_first) Spawn(FlushServer(&e->server, flushed, gate.Enter()));
  std::string got;
  while (got.size() < big->size()) {
    IoResult r = co_await e->client.Fill(Deadline::AfterMs(10000));
    if (r.res <= 0) {
      ADD_FAILURE() << "client read " << r.res << " after " << got.size() << ": "
                    << e->client.error_text();
      break;
    }
    std::span<const std::byte> d = e->client.Peek();
    got.append(reinterpret_cast<const char*>(d.data()), d.size());
    e->client.Consume(d.size());
  }
  // The server's reader goes on under its new keys: one more message reaches it.
  IoResult more = co_await WriteAll(&e->client, AsBytes("after"), Deadline::AfterMs(2000));
  EXPECT_TRUE(more.ok());
  co_await gate.Wait();
  co_await e->client.Quiesce();
  co_await e->server.Quiesce();
  co_return got;
}

// Runs KeyUpdateWhileFlushing on a fresh pair: 32 MiB reach the client intact, the
// writer's flush succeeds, and the reader goes on under the new keys.
void ExpectKeyUpdateLeavesTheStreamIntact(Reactor* reactor, BufferRing* ring,
                                          TlsClientShardContext* cc, TlsServerShardContext* sc,
                                          bool answer_first) {
  auto [c, s] = testing::TcpPair();
  WOLFSSL* client_ssl = cc->NewSession();
  Ends e(std::move(c), std::move(s), ring, client_ssl, sc->NewSession());
  const std::string big = Pattern(32 << 20, answer_first ? 5 : 4);
  IoResult flushed{-1};
  std::string read;
  const std::string got = RunUntilComplete(
      *reactor, KeyUpdateWhileFlushing(&e, client_ssl, &big, &flushed, &read, answer_first));
  EXPECT_TRUE(got == big) << got.size();
  EXPECT_EQ(flushed.res, 0);
  EXPECT_EQ(read, "after");
}

TEST_F(TlsStreamTest, AKeyUpdateAnsweredDuringAFlushLeavesTheStreamIntact) {
  ExpectKeyUpdateLeavesTheStreamIntact(reactor_.get(), ring_.get(), client_ctx_.get(),
                                       server_ctx_.get(), false);
}

TEST_F(TlsStreamTest, AKeyUpdateAnsweredWhileNobodySendsGoesOutWithTheWritersFlush) {
  ExpectKeyUpdateLeavesTheStreamIntact(reactor_.get(), ring_.get(), client_ctx_.get(),
                                       server_ctx_.get(), true);
}

// A half-closed server (close_notify and FIN sent) still reads: a KeyUpdate the client
// sends then asks for an answer that can no longer go out. The answer is dropped; the
// read goes on (it failed with EPIPE, and the relay lost the client's upload).
Task<std::string> KeyUpdateAfterCloseNotify(Ends* e, WOLFSSL* client_ssl) {
  if (!co_await HandshakeBoth(e)) co_return "";
  IoResult shut = co_await e->server.ShutdownWrite(Deadline::AfterMs(2000));
  EXPECT_TRUE(shut.ok());
  EXPECT_EQ(wolfSSL_update_keys(client_ssl), WOLFSSL_SUCCESS);
  IoResult w =
      co_await WriteAll(&e->client, AsBytes("after the key update"), Deadline::AfterMs(2000));
  EXPECT_TRUE(w.ok());
  shut = co_await e->client.ShutdownWrite(Deadline::AfterMs(2000));
  EXPECT_TRUE(shut.ok());
  std::string got;
  Gate gate;
  Spawn(ReadToEnd(&e->server, &got, gate.Enter()));
  co_await gate.Wait();
  co_await e->client.Quiesce();
  co_await e->server.Quiesce();
  co_return got;
}

TEST_F(TlsStreamTest, AKeyUpdateAfterOurCloseNotifyDoesNotEndTheRead) {
  auto [c, s] = testing::TcpPair();
  WOLFSSL* client_ssl = client_ctx_->NewSession();
  Ends e(std::move(c), std::move(s), ring_.get(), client_ssl, server_ctx_->NewSession());
  EXPECT_EQ(RunUntilComplete(*reactor_, KeyUpdateAfterCloseNotify(&e, client_ssl)),
            "after the key update");
  EXPECT_FALSE(e.server.truncated());
}

// The writer's Flush keeps its own deadline when the reader answered a KeyUpdate while
// the writer's bytes were stuck: the reader's answer must not make the reader flush them
// under its (long) read deadline while the writer waits for it.
Task<void> ReadUntilEnd(TlsStream* s, bool* done, Gate::Holder) {
  for (;;) {
    IoResult r = co_await s->Fill(Deadline::AfterMs(10000));
    if (r.res <= 0) break;
    s->Consume(s->Peek().size());
  }
  *done = true;
}

Task<void> WriterDeadlineDuringKeyUpdate(Ends* e, WOLFSSL* client_ssl, const std::string* big,
                                         IoResult* flushed, bool* reader_done_at_flush_end) {
  if (!co_await HandshakeBoth(e)) co_return;
  IoResult w = co_await e->server.Write(AsBytes(*big), Deadline::AfterMs(10000));
  EXPECT_TRUE(w.ok());
  EXPECT_GT(e->server.pending_output(), 0u) << "the client's socket took it all";
  Gate gate;
  bool reader_done = false;
  Spawn(ReadUntilEnd(&e->server, &reader_done, gate.Enter()));
  EXPECT_EQ(wolfSSL_update_keys(client_ssl), WOLFSSL_SUCCESS);
  IoResult sent = co_await e->client.Flush(Deadline::AfterMs(2000));
  EXPECT_TRUE(sent.ok());
  co_await Sleep(Deadline::AfterMs(100));  // the server's reader answers it now
  // The client reads nothing: the writer's Flush can only end by its deadline.
  *flushed = co_await e->server.Flush(Deadline::AfterMs(300));
  *reader_done_at_flush_end = reader_done;
  e->server.Abort();
  co_await gate.Wait();
  co_await e->client.Quiesce();
  co_await e->server.Quiesce();
}

TEST_F(TlsStreamTest, AWriterBehindAKeyUpdateAnswerKeepsItsOwnDeadline) {
  auto [c, s] = testing::TcpPair();
  WOLFSSL* client_ssl = client_ctx_->NewSession();
  Ends e(std::move(c), std::move(s), ring_.get(), client_ssl, server_ctx_->NewSession());
  const std::string big = Pattern(32 << 20, 6);
  IoResult flushed{0};
  bool reader_done = true;
  RunUntilComplete(*reactor_,
                   WriterDeadlineDuringKeyUpdate(&e, client_ssl, &big, &flushed, &reader_done));
  EXPECT_TRUE(flushed.timed_out()) << flushed.res;
  EXPECT_FALSE(reader_done) << "the writer waited for the reader's read deadline";
}

// client --TLS--> [server TLS stream | pump | plain] --> echo thread
Task<void> PumpTlsToPlain(Ends* e, PlainStream* up, PumpResources res, PumpResult* out,
                          Gate::Holder) {
  IoResult h = co_await e->server.Handshake(Deadline::AfterMs(5000));
  EXPECT_EQ(h.res, 0) << e->server.error_text();
  Pump pump(&e->server, up, res, PumpOptions{});
  *out = co_await pump.Run();
  co_await up->Quiesce();
}

Task<void> RunSweeper(IdleSweeper* sweeper, Gate::Holder) { co_await sweeper->Run(); }

Task<void> ClientThroughPump(Ends* e, PlainStream* up, PumpResources res, const std::string* data,
                             std::string* echoed, PumpResult* result) {
  Gate gate;
  Spawn(RunSweeper(res.sweeper, gate.Enter()));
  Gate pump_gate;
  Spawn(PumpTlsToPlain(e, up, res, result, pump_gate.Enter()));
  IoResult h = co_await e->client.Handshake(Deadline::AfterMs(5000));
  EXPECT_EQ(h.res, 0) << e->client.error_text();
  Gate io;
  Spawn(SendAllThenShut(&e->client, data, io.Enter()));
  Spawn(ReadToEnd(&e->client, echoed, io.Enter()));
  co_await io.Wait();
  co_await pump_gate.Wait();
  res.sweeper->Stop();
  co_await gate.Wait();
  co_await e->client.Quiesce();
  co_await e->server.Quiesce();
}

TEST_F(TlsStreamTest, ThePumpMovesBytesBetweenTlsAndPlainWithHalfClose) {
  auto [c, s] = testing::TcpPair();
  auto [up_ours, up_peer] = testing::TcpPair();
  Ends e(std::move(c), std::move(s), ring_.get(), client_ctx_->NewSession(),
         server_ctx_->NewSession());
  PlainStream up(std::move(up_ours), ring_.get());
  testing::SetBlocking(up_peer.get());
  std::thread echo([fd = up_peer.get()] {
    char buf[65536];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      if (!testing::WriteAll(fd, buf, static_cast<size_t>(n))) break;
    }
    shutdown(fd, SHUT_WR);
  });
  PipePool pipes(65536, 4);
  IdleSweeper sweeper(10);
  const std::string data = Pattern(4 << 20, 3);
  std::string echoed;
  PumpResult result;
  RunUntilComplete(*reactor_,
                   ClientThroughPump(&e, &up, PumpResources{&pipes, ring_.get(), &sweeper}, &data,
                                     &echoed, &result));
  echo.join();
  EXPECT_TRUE(echoed == data) << echoed.size();
  EXPECT_EQ(result.end, PumpEnd::kClosed) << PumpEndName(result.end);
  EXPECT_EQ(result.bytes_to_upstream, data.size());
  EXPECT_EQ(result.mode_switches, 0u) << "TLS on one side: never splice";
}

}  // namespace
}  // namespace ringproxy
