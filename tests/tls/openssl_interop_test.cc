// The server contexts against another implementation: `openssl s_client` over real TCP
// on 127.0.0.1, our server on a thread with wolfSSL's own socket I/O. It covers what the
// in-memory tests cannot with a wolfSSL client: a refused TLS 1.2 ticket must end in a
// working full handshake (a wolfSSL 5.5.4 client mistakes that answer for a
// resumption), and real-world ClientHellos for SNI, ECDSA/RSA choice and resumption.
// The server peeks at the first flight and calls NoteClientHello before wolfSSL_accept,
// as the TLS stream should. Skipped when there is no `openssl` program.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "tests/tls/tls_testing.h"
#include "tls/error_text.h"
#include "tls/library.h"
#include "tls/server_context.h"
#include "tls/ticket_keys.h"

namespace ringproxy {
namespace {

using testing::KeyType;
using testing::TempDir;
using testing::TestPki;

struct Served {
  bool ok = false;
  bool reused = false;
  std::string error;
  std::string read_error;  // with read_first: why the first wolfSSL_read failed
};

// Waits (up to 2 s) until the first TLS record has fully arrived, without consuming it.
std::string PeekFirstRecord(int fd) {
  char buf[16384 + 5];
  for (int i = 0; i < 200; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10) < 0) break;
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (n >= 5) {
      size_t want = 5 + (static_cast<uint8_t>(buf[3]) << 8 | static_cast<uint8_t>(buf[4]));
      if (static_cast<size_t>(n) >= want || static_cast<size_t>(n) == sizeof(buf)) {
        return std::string(buf, n);
      }
    } else if (n == 0) {
      break;
    }
  }
  return "";
}

// Accepts one connection on `listener`, handshakes, greets, closes. With `read_first` it
// reads once after the handshake (3 s at most) and notes how that read failed.
Served ServeOne(TlsServerShardContext& shard, int listener, bool read_first = false) {
  Served s;
  int fd = accept(listener, nullptr, nullptr);
  if (fd < 0) return s;
  timeval timeout{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string hello = PeekFirstRecord(fd);
  WOLFSSL* ssl = shard.NewSession();
  TlsServerShardContext::NoteClientHello(ssl, reinterpret_cast<const uint8_t*>(hello.data()),
                                         hello.size());
  wolfSSL_set_fd(ssl, fd);
  int ret = wolfSSL_accept(ssl);
  s.ok = ret == WOLFSSL_SUCCESS;
  if (s.ok && read_first) {
    char buf[64];
    int n = wolfSSL_read(ssl, buf, sizeof(buf));
    if (n <= 0) s.read_error = TlsErrorText(ssl, n);
  }
  if (s.ok) {
    s.reused = wolfSSL_session_reused(ssl) == 1;
    wolfSSL_write(ssl, "hello\n", 6);
    wolfSSL_shutdown(ssl);
  } else {
    s.error = TlsErrorText(ssl, ret);
  }
  wolfSSL_free(ssl);
  close(fd);
  return s;
}

class OpensslInteropTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(InitTlsLibrary().ok());
    dir_ = new TempDir();
    TestPki& pki = TestPki::Shared();
    dir_->Write("ca.pem", pki.ca_pem());
    dir_->WritePair("default", pki.Issue({"default.test"}, KeyType::kEcdsaP256));
    names_ = new TempDir();
    names_->WritePair("dual.test", pki.Issue({"dual.test"}, KeyType::kEcdsaP256));
    names_->WritePair("dual.test.rsa", pki.Issue({"dual.test"}, KeyType::kRsa2048));
  }
  static void TearDownTestSuite() {
    delete names_;
    delete dir_;
  }

  void SetUp() override {
    // openssl is a test dependency (tools/lib/deps.sh installs it): missing is a failure.
    ASSERT_EQ(system("openssl version > /dev/null 2>&1"), 0) << "no openssl program";
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(listen(listener_, 8), 0);
    socklen_t len = sizeof(a);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  void TearDown() override {
    if (listener_ >= 0) close(listener_);
  }

  static std::unique_ptr<TlsServerShardContext> Shard(std::shared_ptr<const TicketKeys> keys,
                                                      bool strict = false) {
    TlsServerSettings s;
    if (!strict) {
      s.certificate = dir_->path() + "/default.crt";
      s.key = dir_->path() + "/default.key";
    }
    s.certificate_dir = names_->path();
    s.strict_sni = strict;
    return *TlsServerShardContext::Create(*TlsServerContext::Create(s, std::move(keys)));
  }
  static std::shared_ptr<const TicketKeys> Keys(uint8_t seed) {
    uint8_t secret[TicketKeys::kMasterSecretBytes];
    memset(secret, seed, sizeof(secret));
    return TicketKeys::FromSecret(secret, 3600);
  }

  // One s_client run against `shard`; returns its output (stdout and stderr).
  // `input` (a printf format) is typed into s_client; without it s_client waits for the
  // server to close.
  std::string Connect(TlsServerShardContext& shard, const std::string& args, Served* served,
                      const char* input = nullptr) {
    std::thread server([&] { *served = ServeOne(shard, listener_, input != nullptr); });
    std::string cmd = "openssl s_client -connect 127.0.0.1:" + std::to_string(port_) + " -CAfile " +
                      dir_->path() + "/ca.pem " + args;
    cmd = input != nullptr ? "printf '" + std::string(input) + "' | " + cmd + " 2>&1"
                           : cmd + " -ign_eof < /dev/null 2>&1";
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
      pclose(p);
    }
    server.join();
    return out;
  }

  static bool Has(const std::string& out, const std::string& what) {
    return out.find(what) != std::string::npos;
  }

  static TempDir* dir_;
  static TempDir* names_;
  int listener_ = -1;
  int port_ = 0;
};

TempDir* OpensslInteropTest::dir_ = nullptr;
TempDir* OpensslInteropTest::names_ = nullptr;

TEST_F(OpensslInteropTest, TicketsResumeAcrossShardsAndARefusedTls12TicketFallsBackCleanly) {
  for (const char* version : {"-tls1_2", "-tls1_3"}) {
    auto keys = Keys(1);
    auto shard_a = Shard(keys), shard_b = Shard(keys), stranger = Shard(Keys(2));
    std::string sess = dir_->path() + "/session.pem";
    Served served;
    std::string out = Connect(*shard_a, std::string(version) + " -sess_out " + sess, &served);
    ASSERT_TRUE(served.ok) << served.error << "\n" << out;
    EXPECT_TRUE(Has(out, "New, TLSv1.")) << out;
    out = Connect(*shard_b, std::string(version) + " -sess_in " + sess, &served);
    ASSERT_TRUE(served.ok) << served.error;
    EXPECT_TRUE(served.reused) << version;
    EXPECT_TRUE(Has(out, "Reused, TLSv1.")) << out;
    // Another master secret: the ticket is refused and a full handshake follows.
    out = Connect(*stranger, std::string(version) + " -sess_in " + sess, &served);
    EXPECT_TRUE(served.ok) << version << ": " << served.error << "\n" << out;
    EXPECT_FALSE(served.reused);
    EXPECT_TRUE(Has(out, "New, TLSv1.")) << out;
    EXPECT_TRUE(Has(out, "hello")) << out;
  }
}

// RFC 6066 §3: a ticket resumes under the name it was issued for, and under another name
// the server makes a full handshake with that name's certificate.
TEST_F(OpensslInteropTest, ATicketResumesOnlyUnderItsServerName) {
  for (const char* version : {"-tls1_2", "-tls1_3"}) {
    auto shard = Shard(Keys(1));
    std::string sess = dir_->path() + "/named.pem";
    std::string v = std::string(version) + " -servername ";
    Served served;
    std::string out = Connect(*shard, v + "dual.test -sess_out " + sess, &served);
    ASSERT_TRUE(served.ok) << served.error << "\n" << out;
    out = Connect(*shard, v + "dual.test -sess_in " + sess, &served);
    ASSERT_TRUE(served.ok) << served.error;
    EXPECT_TRUE(served.reused) << version << "\n" << out;
    out = Connect(*shard, v + "default.test -sess_in " + sess, &served);
    EXPECT_TRUE(served.ok) << version << ": " << served.error << "\n" << out;
    EXPECT_FALSE(served.reused) << version << "\n" << out;
    EXPECT_TRUE(Has(out, "New, TLSv1.")) << out;
    EXPECT_TRUE(Has(out, "CN = default.test") || Has(out, "CN=default.test")) << out;
    EXPECT_TRUE(Has(out, "hello")) << out;
  }
}

TEST_F(OpensslInteropTest, DualCertificateFollowsOpensslsOffer) {
  auto shard = Shard(Keys(1));
  struct Case {
    const char* args;
    const char* key;  // s_client: "Server public key is 256 bit" (EC) / "2048 bit" (RSA)
  };
  for (const Case& c : {Case{"-tls1_3", "256 bit"}, Case{"-tls1_2", "256 bit"},
                        Case{"-tls1_3 -sigalgs RSA-PSS+SHA256", "2048 bit"},
                        Case{"-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256", "2048 bit"}}) {
    Served served;
    std::string out = Connect(*shard, std::string("-servername dual.test ") + c.args, &served);
    EXPECT_TRUE(served.ok) << c.args << ": " << served.error << "\n" << out;
    EXPECT_TRUE(Has(out, std::string("Server public key is ") + c.key)) << c.args << "\n" << out;
    EXPECT_TRUE(Has(out, "Verify return code: 0 (ok)")) << out;
  }
}

// A renegotiation (OpenSSL's "R" command, TLS 1.2) is refused: this wolfSSL has no
// secure renegotiation, and a ClientHello after the handshake is a fatal
// unexpected_message (internal.c DoHandShakeMsgType).
TEST_F(OpensslInteropTest, RenegotiationIsRefused) {
  auto shard = Shard(Keys(1));
  Served served;
  std::string out = Connect(*shard, "-tls1_2", &served, "R\\n");
  ASSERT_TRUE(served.ok) << served.error;
  EXPECT_TRUE(Has(out, "RENEGOTIATING")) << out;
  EXPECT_NE(served.read_error.find("sent alert unexpected_message"), std::string::npos)
      << served.read_error;
}

TEST_F(OpensslInteropTest, StrictSniAlertReachesOpenssl) {
  auto shard = Shard(Keys(1), /*strict=*/true);
  Served served;
  std::string out = Connect(*shard, "-servername unknown.test", &served);
  EXPECT_FALSE(served.ok);
  EXPECT_TRUE(Has(out, "unrecognized name")) << out;
  out = Connect(*shard, "-noservername", &served);
  EXPECT_FALSE(served.ok);
  EXPECT_TRUE(Has(out, "unrecognized name")) << out;
}

}  // namespace
}  // namespace ringproxy
