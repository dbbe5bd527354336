// Upstream TLS contexts (tls/client_context.h) against a server from
// TlsServerShardContext, in memory: the chain and the name are checked when verify is on,
// and the reasons for a refusal read as text; SNI and ALPN go out; config errors.
#include "tls/client_context.h"

#include <gtest/gtest.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <string>

#include "core/status_util.h"
#include "tests/tls/tls_testing.h"
#include "tls/library.h"
#include "tls/server_context.h"

namespace ringproxy {
namespace {

using testing::KeyType;
using testing::MemoryLink;
using testing::SslPtr;
using testing::TempDir;
using testing::TestPki;

class ClientContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(InitTlsLibrary().ok());
    files_ = new TempDir();
    files_->Write("ca.pem", TestPki::Shared().ca_pem());
    files_->WritePair("upstream", TestPki::Shared().Issue({"upstream.test"}, KeyType::kEcdsaP256));
    TestPki other("someone else's CA");
    files_->WritePair("stranger", other.Issue({"upstream.test"}, KeyType::kEcdsaP256));
  }
  static void TearDownTestSuite() { delete files_; }

  // An upstream server whose default pair is `stem`.crt/.key, and "named.test" by SNI.
  static std::unique_ptr<TlsServerShardContext> Upstream(const std::string& stem) {
    TlsServerSettings s;
    s.certificate = files_->path() + "/" + stem + ".crt";
    s.key = files_->path() + "/" + stem + ".key";
    s.session_tickets = false;
    s.alpn = {"h2", "http/1.1"};
    auto context = TlsServerContext::Create(s, nullptr);
    EXPECT_TRUE(context.ok()) << MessageOf(context.status());
    return *TlsServerShardContext::Create(*context);
  }

  static TlsClientSettings Settings(const std::string& name, bool verify = true) {
    TlsClientSettings s;
    s.verify = verify;
    s.ca_file = files_->path() + "/ca.pem";
    s.server_name = name;
    return s;
  }

  struct Result {
    testing::HandshakeResult handshake;
    std::string peer_cn;
    std::string alpn;
  };
  static Result Connect(const TlsClientSettings& settings, TlsServerShardContext& server) {
    auto context = TlsClientContext::Create(settings);
    EXPECT_TRUE(context.ok()) << MessageOf(context.status());
    auto shard = *TlsClientShardContext::Create(*context);
    SslPtr client(shard->NewSession());
    SslPtr session(server.NewSession());
    MemoryLink link;
    link.Attach(client.get(), session.get());
    Result r;
    r.handshake = testing::Handshake(client.get(), session.get(), link);
    r.peer_cn = testing::PeerCommonName(client.get());
    char* proto = nullptr;
    unsigned short bytes = 0;
    if (wolfSSL_ALPN_GetProtocol(client.get(), &proto, &bytes) == WOLFSSL_SUCCESS) {
      r.alpn.assign(proto, bytes);
    }
    return r;
  }

  static TempDir* files_;
};

TempDir* ClientContextTest::files_ = nullptr;

TEST_F(ClientContextTest, TrustedChainAndRightNameConnect) {
  auto server = Upstream("upstream");
  Result r = Connect(Settings("upstream.test"), *server);
  EXPECT_TRUE(r.handshake.ok) << r.handshake.client_error;
  EXPECT_EQ(r.peer_cn, "upstream.test");
}

// A fully qualified name: its trailing dot is in neither the SNI nor the certificate.
TEST_F(ClientContextTest, ANameWithATrailingDotIsTheSameName) {
  auto server = Upstream("upstream");
  Result r = Connect(Settings("upstream.test."), *server);
  EXPECT_TRUE(r.handshake.ok) << r.handshake.client_error;
  EXPECT_EQ(r.peer_cn, "upstream.test");
}

TEST_F(ClientContextTest, UnknownCaIsRefusedWhenVerifyingAndAcceptedWhenNot) {
  auto server = Upstream("stranger");
  Result refused = Connect(Settings("upstream.test"), *server);
  EXPECT_FALSE(refused.handshake.ok);
  // ASN_NO_SIGNER_E; this build (WOLFSSL_ERROR_CODE_OPENSSL) words it like OpenSSL.
  EXPECT_NE(refused.handshake.client_error.find("certificate verify failed (-188)"),
            std::string::npos)
      << refused.handshake.client_error;
  EXPECT_NE(refused.handshake.client_error.find("sent alert unknown_ca"), std::string::npos);
  printf("unknown CA: %s\n", refused.handshake.client_error.c_str());
  Result accepted = Connect(Settings("upstream.test", /*verify=*/false), *server);
  EXPECT_TRUE(accepted.handshake.ok) << accepted.handshake.client_error;
}

TEST_F(ClientContextTest, WrongHostNameIsRefusedWhenVerifying) {
  auto server = Upstream("upstream");
  Result refused = Connect(Settings("other.test"), *server);
  EXPECT_FALSE(refused.handshake.ok);
  EXPECT_NE(refused.handshake.client_error.find("name mismatch (-322)"), std::string::npos)
      << refused.handshake.client_error;
  printf("wrong name: %s\n", refused.handshake.client_error.c_str());
  EXPECT_TRUE(Connect(Settings("other.test", false), *server).handshake.ok);
}

TEST_F(ClientContextTest, SendsSniAndAlpn) {
  TempDir names;
  names.WritePair("named.test", TestPki::Shared().Issue({"named.test"}, KeyType::kEcdsaP256));
  TlsServerSettings s;
  s.certificate = files_->path() + "/upstream.crt";
  s.key = files_->path() + "/upstream.key";
  s.certificate_dir = names.path();
  s.session_tickets = false;
  s.alpn = {"h2", "http/1.1"};
  auto server = *TlsServerShardContext::Create(*TlsServerContext::Create(s, nullptr));
  TlsClientSettings settings = Settings("named.test");
  settings.alpn = {"http/1.1"};
  Result r = Connect(settings, *server);
  ASSERT_TRUE(r.handshake.ok) << r.handshake.client_error;
  EXPECT_EQ(r.peer_cn, "named.test");  // the server picked by our SNI
  EXPECT_EQ(r.alpn, "http/1.1");
  // An IP address is not sent as SNI (RFC 6066): the server's default answers.
  settings = Settings("127.0.0.1", false);
  r = Connect(settings, *server);
  ASSERT_TRUE(r.handshake.ok) << r.handshake.client_error;
  EXPECT_EQ(r.peer_cn, "upstream.test");
}

TEST_F(ClientContextTest, ConfigErrors) {
  auto error = [](const TlsClientSettings& s) {
    auto context = TlsClientContext::Create(s);
    return context.ok() ? std::string("ok") : std::string(MessageOf(context.status()));
  };
  TlsClientSettings s = Settings("");
  EXPECT_NE(error(s).find("server_name is empty"), std::string::npos);
  s = Settings("upstream.test");
  s.ca_file = files_->path() + "/missing.pem";
  EXPECT_NE(error(s).find("missing.pem"), std::string::npos) << error(s);
  s.ca_file = files_->Write("garbage.pem", "not a certificate\n");
  EXPECT_NE(error(s).find("garbage.pem"), std::string::npos) << error(s);
  s.verify = false;  // the CA file is not read then
  EXPECT_EQ(error(s), "ok");
  s.alpn = {"a,b"};
  EXPECT_NE(error(s).find("not a protocol name"), std::string::npos);
}

}  // namespace
}  // namespace ringproxy
