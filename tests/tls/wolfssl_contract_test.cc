// How wolfSSL 5.5.4 (this build) behaves at the edges the TLS stream has to handle:
// pinned here so that a wolfSSL upgrade that changes any of it fails a test instead of
// a connection. Each test names the source it follows. The summary for the stream:
//  * I/O callbacks: recv returns bytes copied, WOLFSSL_CBIO_ERR_WANT_READ when nothing
//    is staged, WOLFSSL_CBIO_ERR_CONN_CLOSE at EOF; never 0 (GetInputData calls recv
//    again in a loop on 0). wolfSSL asks for exactly what it needs (a 5-byte header,
//    then the rest of the record). send may take part of the buffer (wolfSSL calls it
//    again for the rest) or return WOLFSSL_CBIO_ERR_WANT_WRITE.
//  * wolfSSL_write after WANT_WRITE: call again with the same bytes (a moved buffer is
//    fine, the length must not shrink); the return is the full length, sent once.
//  * close_notify from the peer: wolfSSL_read returns 0 with SSL_ERROR_ZERO_RETURN; later
//    reads return -1, still with SSL_ERROR_ZERO_RETURN. Writing still works (half-close).
//  * transport EOF without close_notify: wolfSSL_read returns 0, wolfSSL_get_error gives
//    SOCKET_PEER_CLOSED_E (-397): a truncation, not a clean close.
//  * wolfSSL_shutdown: the first call sends close_notify and returns
//    WOLFSSL_SHUTDOWN_NOT_DONE (2) unless the peer's already came; reading after it
//    still works (half-close). Once both close_notifys are through it returns 1 and
//    wolfSSL_clear()s the session (OPENSSL_EXTRA): call it once, then free.
//  * wolfSSL_read may write: a TLS 1.3 KeyUpdate from the peer is answered from inside
//    wolfSSL_read through the send callback.
#include <gtest/gtest.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <string>
#include <vector>

#include "tests/tls/tls_testing.h"
#include "tls/library.h"
#include "tls/server_context.h"

namespace ringproxy {
namespace {

using testing::CtxPtr;
using testing::KeyType;
using testing::MemoryLink;
using testing::SslPtr;
using testing::TempDir;
using testing::TestPki;

class WolfSslContractTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(InitTlsLibrary().ok());
    dir_ = new TempDir();
    dir_->WritePair("default", TestPki::Shared().Issue({"default.test"}, KeyType::kEcdsaP256));
    TlsServerSettings s;
    s.certificate = dir_->path() + "/default.crt";
    s.key = dir_->path() + "/default.key";
    s.session_tickets = false;
    shard_ = TlsServerShardContext::Create(*TlsServerContext::Create(s, nullptr))->release();
  }
  static void TearDownTestSuite() {
    delete shard_;
    delete dir_;
  }

  void SetUp() override {
    client_ctx_.reset(testing::NewTestClientCtx(wolfSSLv23_client_method(), ""));
    client_.reset(wolfSSL_new(client_ctx_.get()));
    server_.reset(shard_->NewSession());
    link_.Attach(client_.get(), server_.get());
    ASSERT_TRUE(testing::Handshake(client_.get(), server_.get(), link_).ok);
  }

  // Reads everything available (until WANT_READ or an end); returns the last result.
  static int ReadAll(WOLFSSL* ssl, std::string* out) {
    char buf[4096];
    for (;;) {
      int n = wolfSSL_read(ssl, buf, sizeof(buf));
      if (n <= 0) return n;
      out->append(buf, n);
    }
  }

  static TempDir* dir_;
  static TlsServerShardContext* shard_;
  CtxPtr client_ctx_;
  SslPtr client_, server_;
  MemoryLink link_;
};

TempDir* WolfSslContractTest::dir_ = nullptr;
TlsServerShardContext* WolfSslContractTest::shard_ = nullptr;

TEST_F(WolfSslContractTest, PeerCloseNotifyReadsAsZeroReturnAndWritingGoesOn) {
  EXPECT_EQ(wolfSSL_shutdown(client_.get()), WOLFSSL_SHUTDOWN_NOT_DONE);
  std::string got;
  EXPECT_EQ(ReadAll(server_.get(), &got), 0);
  EXPECT_EQ(wolfSSL_get_error(server_.get(), 0), WOLFSSL_ERROR_ZERO_RETURN);
  char c;
  EXPECT_EQ(wolfSSL_read(server_.get(), &c, 1), -1);  // the next read: -1, still ZERO_RETURN
  EXPECT_EQ(wolfSSL_get_error(server_.get(), -1), WOLFSSL_ERROR_ZERO_RETURN);
  // Half-close: the server still writes, the client (which sent close_notify) reads.
  ASSERT_EQ(wolfSSL_write(server_.get(), "late", 4), 4);
  EXPECT_EQ(ReadAll(client_.get(), &got), -1);
  EXPECT_EQ(wolfSSL_get_error(client_.get(), -1), WOLFSSL_ERROR_WANT_READ);
  EXPECT_EQ(got, "late");
}

TEST_F(WolfSslContractTest, ShutdownCompletesOnceBothSidesSentCloseNotify) {
  EXPECT_EQ(wolfSSL_shutdown(server_.get()), WOLFSSL_SHUTDOWN_NOT_DONE);
  std::string got;
  EXPECT_EQ(ReadAll(client_.get(), &got), 0);
  EXPECT_EQ(wolfSSL_get_error(client_.get(), 0), WOLFSSL_ERROR_ZERO_RETURN);
  // The client has the server's close_notify: its shutdown sends one and is complete.
  EXPECT_EQ(wolfSSL_shutdown(client_.get()), WOLFSSL_SUCCESS);
  // The server's second call reads the client's close_notify and completes.
  EXPECT_EQ(wolfSSL_shutdown(server_.get()), WOLFSSL_SUCCESS);
  // ...and has wolfSSL_clear()ed the session: no handshake state, nothing to write with.
  EXPECT_FALSE(wolfSSL_is_init_finished(server_.get()));
}

TEST_F(WolfSslContractTest, TransportEofWithoutCloseNotifyIsPeerClosed) {
  ASSERT_EQ(wolfSSL_write(client_.get(), "abc", 3), 3);
  link_.to_server.eof = true;
  std::string got;
  EXPECT_EQ(ReadAll(server_.get(), &got), 0);
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(wolfSSL_get_error(server_.get(), 0), -397);  // SOCKET_PEER_CLOSED_E
}

TEST_F(WolfSslContractTest, WantWriteThenRetryWithTheSameBytesSendsThemOnce) {
  std::string big(100 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  link_.server.block_writes = true;
  EXPECT_EQ(wolfSSL_write(server_.get(), big.data(), static_cast<int>(big.size())), -1);
  EXPECT_EQ(wolfSSL_get_error(server_.get(), -1), WOLFSSL_ERROR_WANT_WRITE);
  link_.server.block_writes = false;
  std::string moved = big;  // another buffer with the same bytes
  EXPECT_EQ(wolfSSL_write(server_.get(), moved.data(), static_cast<int>(moved.size())),
            static_cast<int>(big.size()));
  std::string got;
  EXPECT_EQ(ReadAll(client_.get(), &got), -1);
  EXPECT_EQ(got, big);
}

TEST_F(WolfSslContractTest, SendMayTakePartOfTheBufferAndRecvMayGiveLittle) {
  // A send callback that takes at most 1000 bytes a call: one wolfSSL_write still
  // returns everything. A recv that hands out one byte a call: wolfSSL keeps asking.
  link_.client.max_read = 1;
  struct Partial {
    static int Send(WOLFSSL* ssl, char* buf, int size, void* ctx) {
      return testing::MemorySend(ssl, buf, size < 1000 ? size : 1000, ctx);
    }
  };
  wolfSSL_SSLSetIOSend(server_.get(), Partial::Send);
  std::string data(40000, 'z');
  EXPECT_EQ(wolfSSL_write(server_.get(), data.data(), static_cast<int>(data.size())), 40000);
  std::string got;
  EXPECT_EQ(ReadAll(client_.get(), &got), -1);
  EXPECT_EQ(got, data);
}

TEST_F(WolfSslContractTest, PendingCountsDecryptedBytesNotYetRead) {
  ASSERT_EQ(wolfSSL_write(client_.get(), "0123456789", 10), 10);
  char buf[4];
  ASSERT_EQ(wolfSSL_read(server_.get(), buf, 4), 4);
  EXPECT_EQ(wolfSSL_pending(server_.get()), 6);
}

TEST_F(WolfSslContractTest, ReadAnswersATls13KeyUpdateThroughTheSendCallback) {
  ASSERT_STREQ(wolfSSL_get_version(server_.get()), "TLSv1.3");
  ASSERT_EQ(wolfSSL_update_keys(client_.get()), WOLFSSL_SUCCESS);
  ASSERT_GT(link_.to_server.pending(), 0u);
  size_t before = link_.to_client.pending();
  std::string got;
  EXPECT_EQ(ReadAll(server_.get(), &got), -1);  // no data, but a KeyUpdate to answer
  EXPECT_GT(link_.to_client.pending(), before) << "wolfSSL_read sent the KeyUpdate answer";
  ASSERT_EQ(wolfSSL_write(server_.get(), "after", 5), 5);
  EXPECT_EQ(ReadAll(client_.get(), &got), -1);
  EXPECT_EQ(got, "after");
}

TEST_F(WolfSslContractTest, FatalAlertFromThePeerIsAnError) {
  // A record the server cannot decrypt makes it send a fatal alert and fail.
  ASSERT_EQ(wolfSSL_write(client_.get(), "abc", 3), 3);
  link_.to_server.data.back() ^= 1;
  std::string got;
  EXPECT_LT(ReadAll(server_.get(), &got), 0);
  EXPECT_LT(wolfSSL_get_error(server_.get(), -1), 0);
  EXPECT_LT(ReadAll(client_.get(), &got), 0);
  EXPECT_EQ(wolfSSL_get_error(client_.get(), -1), -313);  // FATAL_ERROR: received alert
}

}  // namespace
}  // namespace ringproxy
