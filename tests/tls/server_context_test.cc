// Downstream TLS contexts (tls/server_context.h), driven entirely in memory: a wolfSSL
// client and a server session from TlsServerShardContext connected by two byte queues.
// Covers the policy (versions, suites, server order), SNI among a thousand names,
// wildcards, the default, strict mode, ECDSA + RSA on one name, ALPN, the per-shard
// cache bound and CTX lifetimes, and the errors a broken directory or default gives.
#include "tls/server_context.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <chrono>
#include <cstring>
#include <string>

#include "core/status_util.h"
#include "tests/tls/tls_testing.h"
#include "tls/library.h"
#include "tls/ticket_keys.h"

namespace ringproxy {
namespace {

using testing::CtxPtr;
using testing::HandshakeResult;
using testing::KeyType;
using testing::MemoryLink;
using testing::SslPtr;
using testing::TempDir;
using testing::TestPki;

std::string Msg(const absl::Status& s) { return std::string(MessageOf(s)); }

// One client/server pair over a memory link.
struct Conn {
  SslPtr client;
  SslPtr server;
  MemoryLink link;
  HandshakeResult result;
};

struct ClientOptions {
  void* method = nullptr;  // default: any version
  const char* sni = nullptr;
  const char* ciphers = nullptr;
  const char* sigalgs = nullptr;
  const char* alpn = nullptr;        // comma-separated
  bool note_hello = true;            // hand the ClientHello to NoteClientHello
  const char* check_name = nullptr;  // name the client checks; default: sni
};

class ServerContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(InitTlsLibrary().ok());
    TestPki& pki = TestPki::Shared();
    dir_ = new TempDir();
    dir_->WritePair("default", pki.Issue({"default.test"}, KeyType::kEcdsaP256));
    dir_->WritePair("default.rsa", pki.Issue({"default.test"}, KeyType::kRsa2048));
    uint8_t secret[TicketKeys::kMasterSecretBytes] = {1, 2, 3};
    keys_ = new std::shared_ptr<const TicketKeys>(TicketKeys::FromSecret(secret, 3600));
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete keys_;
  }

  static TlsServerSettings DefaultSettings() {
    TlsServerSettings s;
    s.certificate = dir_->path() + "/default.crt";
    s.key = dir_->path() + "/default.key";
    return s;
  }

  std::unique_ptr<TlsServerShardContext> Shard(const TlsServerSettings& settings) {
    absl::StatusOr<std::shared_ptr<const TlsServerContext>> context =
        TlsServerContext::Create(settings, *keys_);
    EXPECT_TRUE(context.ok()) << Msg(context.status());
    if (!context.ok()) return nullptr;
    absl::StatusOr<std::unique_ptr<TlsServerShardContext>> shard =
        TlsServerShardContext::Create(*context);
    EXPECT_TRUE(shard.ok()) << Msg(shard.status());
    return shard.ok() ? *std::move(shard) : nullptr;
  }

  std::unique_ptr<Conn> Connect(TlsServerShardContext& shard, const ClientOptions& o = {}) {
    auto c = std::make_unique<Conn>();
    void* method = o.method != nullptr ? o.method : wolfSSLv23_client_method();
    CtxPtr ctx(testing::NewTestClientCtx(method, TestPki::Shared().ca_pem()));
    if (o.ciphers != nullptr) {
      EXPECT_EQ(wolfSSL_CTX_set_cipher_list(ctx.get(), o.ciphers), 1);
    }
    c->client.reset(wolfSSL_new(ctx.get()));
    c->server.reset(shard.NewSession());
    if (o.sni != nullptr) {
      wolfSSL_UseSNI(c->client.get(), WOLFSSL_SNI_HOST_NAME, o.sni,
                     static_cast<unsigned short>(strlen(o.sni)));
      wolfSSL_check_domain_name(c->client.get(), o.check_name != nullptr ? o.check_name : o.sni);
    }
    if (o.sigalgs != nullptr) {
      EXPECT_EQ(wolfSSL_set1_sigalgs_list(c->client.get(), o.sigalgs), 1);
    }
    if (o.alpn != nullptr) {
      std::string list = o.alpn;
      wolfSSL_UseALPN(c->client.get(), list.data(), static_cast<unsigned>(list.size()),
                      WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    }
    c->link.Attach(c->client.get(), c->server.get());
    bool note = o.note_hello;
    c->result =
        testing::Handshake(c->client.get(), c->server.get(), c->link, [&c, note](MemoryLink& link) {
          if (!note) return;
          TlsServerShardContext::NoteClientHello(
              c->server.get(), reinterpret_cast<const uint8_t*>(link.to_server.data.data()),
              link.to_server.data.size());
        });
    return c;
  }

  // The RSA-only clients: a TLS 1.2 client offering only ECDHE-RSA suites, and a
  // TLS 1.3 client whose signature algorithms are RSA-PSS only.
  void ExpectDualSelection(TlsServerShardContext& shard, const char* sni, const std::string& cn) {
    struct Case {
      ClientOptions options;
      const char* key;
    };
    const Case cases[] = {
        {{.method = wolfTLSv1_3_client_method(), .sni = sni}, "EC"},
        {{.method = wolfTLSv1_2_client_method(), .sni = sni}, "EC"},
        {{.method = wolfTLSv1_2_client_method(),
          .sni = sni,
          .ciphers = "ECDHE-RSA-AES128-GCM-SHA256"},
         "RSA"},
        {{.method = wolfTLSv1_3_client_method(), .sni = sni, .sigalgs = "RSA-PSS+SHA256"}, "RSA"},
        // Without the ClientHello the ECDSA pair is served.
        {{.method = wolfTLSv1_3_client_method(), .sni = sni, .note_hello = false}, "EC"},
    };
    for (const Case& c : cases) {
      auto conn = Connect(shard, c.options);
      EXPECT_TRUE(conn->result.ok)
          << c.key << ": " << conn->result.client_error << " / " << conn->result.server_error;
      EXPECT_EQ(testing::PeerKeyType(conn->client.get()), c.key);
      EXPECT_EQ(testing::PeerCommonName(conn->client.get()), cn);
    }
  }

  static TempDir* dir_;
  static std::shared_ptr<const TicketKeys>* keys_;
};

TempDir* ServerContextTest::dir_ = nullptr;
std::shared_ptr<const TicketKeys>* ServerContextTest::keys_ = nullptr;

bool IsAeadWithForwardSecrecy(const std::string& cipher) {
  bool aead =
      cipher.find("GCM") != std::string::npos || cipher.find("CHACHA20") != std::string::npos;
  bool fs = cipher.rfind("TLS13-", 0) == 0 || cipher.rfind("ECDHE-", 0) == 0;
  return aead && fs;
}

TEST_F(ServerContextTest, Tls13AndTls12AreAcceptedWithAeadForwardSecretSuites) {
  auto shard = Shard(DefaultSettings());
  auto v13 = Connect(*shard, {.method = wolfTLSv1_3_client_method()});
  ASSERT_TRUE(v13->result.ok) << v13->result.client_error << " / " << v13->result.server_error;
  EXPECT_STREQ(wolfSSL_get_version(v13->server.get()), "TLSv1.3");
  EXPECT_TRUE(IsAeadWithForwardSecrecy(wolfSSL_get_cipher_name(v13->server.get())));
  EXPECT_TRUE(testing::RoundTrip(v13->client.get(), v13->server.get()));

  auto v12 = Connect(*shard, {.method = wolfTLSv1_2_client_method()});
  ASSERT_TRUE(v12->result.ok) << v12->result.client_error << " / " << v12->result.server_error;
  EXPECT_STREQ(wolfSSL_get_version(v12->server.get()), "TLSv1.2");
  EXPECT_STREQ(wolfSSL_get_cipher_name(v12->server.get()), "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_TRUE(testing::RoundTrip(v12->client.get(), v12->server.get()));
}

TEST_F(ServerContextTest, Tls11AndTls10AreRefused) {
  auto shard = Shard(DefaultSettings());
  // TLS 1.1 is compiled into this wolfSSL; a client forced to it must fail.
  auto v11 = Connect(*shard, {.method = wolfTLSv1_1_client_method()});
  EXPECT_FALSE(v11->result.ok);
  EXPECT_NE(v11->result.server_error.find("version"), std::string::npos)
      << v11->result.server_error;
  // TLS 1.0 is not compiled (no WOLFSSL_ALLOW_TLSV10): no client method exists, so a
  // TLS 1.1 ClientHello is rewritten to say 1.0 (record and hello version).
  auto c = std::make_unique<Conn>();
  CtxPtr ctx(testing::NewTestClientCtx(wolfTLSv1_1_client_method(), ""));
  c->client.reset(wolfSSL_new(ctx.get()));
  c->server.reset(shard->NewSession());
  c->link.Attach(c->client.get(), c->server.get());
  c->result = testing::Handshake(c->client.get(), c->server.get(), c->link, [](MemoryLink& link) {
    std::string& hello = link.to_server.data;
    ASSERT_GT(hello.size(), 11u);
    hello[2] = 0x01;   // record version 3.1
    hello[10] = 0x01;  // client_version 3.1
  });
  EXPECT_FALSE(c->result.ok);
  EXPECT_NE(c->result.server_error.find("version"), std::string::npos) << c->result.server_error;
}

TEST_F(ServerContextTest, NonAeadOrNonForwardSecretSuitesAreRefused) {
  auto shard = Shard(DefaultSettings());
  // CBC with ECDHE, DHE with GCM (no ECDHE), anonymous, NULL: each is in this wolfSSL
  // build (the client accepts the list) and each is refused by the server.
  for (const char* suites :
       {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA", "DHE-RSA-AES128-GCM-SHA256",
        "ADH-AES128-SHA", "ECDHE-ECDSA-NULL-SHA", "ECDHE-ECDSA-AES128-CCM"}) {
    auto c = Connect(*shard, {.method = wolfTLSv1_2_client_method(), .ciphers = suites});
    EXPECT_FALSE(c->result.ok) << suites;
  }
}

TEST_F(ServerContextTest, ServerOrderOfSuitesWins) {
  auto shard = Shard(DefaultSettings());
  auto v12 =
      Connect(*shard, {.method = wolfTLSv1_2_client_method(),
                       .ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                  "ECDHE-ECDSA-AES128-GCM-SHA256"});
  ASSERT_TRUE(v12->result.ok) << v12->result.server_error;
  EXPECT_STREQ(wolfSSL_get_cipher_name(v12->server.get()), "ECDHE-ECDSA-AES128-GCM-SHA256");
  auto v13 = Connect(*shard, {.method = wolfTLSv1_3_client_method(),
                              .ciphers = "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256"});
  ASSERT_TRUE(v13->result.ok) << v13->result.server_error;
  EXPECT_STREQ(wolfSSL_get_cipher_name(v13->server.get()), "TLS13-AES128-GCM-SHA256");
}

// A TLS 1.2 ClientHello without any extension never reaches the servername callback
// (internal.c DoClientHello calls it only after parsing extensions); the certificate
// callback decides instead: strict mode refuses it, otherwise the default answers.
std::string HelloWithoutExtensions() {
  std::string body = std::string("\x03\x03", 2) + std::string(32, 'r') + std::string(1, '\0');
  body += std::string("\x00\x02\xc0\x2b", 4) + std::string("\x01\x00", 2);
  std::string hs = std::string(1, 1) + std::string(1, 0) + std::string(1, 0) +
                   std::string(1, static_cast<char>(body.size())) + body;
  return std::string("\x16\x03\x03\x00", 4) + std::string(1, static_cast<char>(hs.size())) + hs;
}

TEST_F(ServerContextTest, HelloWithoutExtensionsIsRefusedInStrictModeAndServedOtherwise) {
  TempDir names;
  names.WritePair("known.test", TestPki::Shared().Issue({"known.test"}, KeyType::kEcdsaP256));
  TlsServerSettings settings;
  settings.certificate_dir = names.path();
  settings.strict_sni = true;
  for (bool strict : {true, false}) {
    if (!strict) settings = DefaultSettings();
    auto shard = Shard(settings);
    SslPtr server(shard->NewSession());
    MemoryLink link;
    link.Attach(nullptr, server.get());
    link.to_server.data = HelloWithoutExtensions();
    EXPECT_NE(wolfSSL_accept(server.get()), WOLFSSL_SUCCESS);
    std::vector<int> flight = testing::PlaintextHandshakeTypes(link.to_client.data);
    if (strict) {
      EXPECT_EQ(wolfSSL_get_error(server.get(), -1), -436) << "CLIENT_CERT_CB_ERROR";
      // Fatal alerts: internal_error (the callback wrapper), then handshake_failure.
      ASSERT_GE(link.to_client.data.size(), 7u);
      EXPECT_EQ(link.to_client.data[0], 21);
      EXPECT_EQ(link.to_client.data[5], 2);
      EXPECT_EQ(link.to_client.data[6], 80);
    } else {
      // Waiting for the client's next flight after ServerHello .. ServerHelloDone.
      EXPECT_EQ(wolfSSL_get_error(server.get(), -1), WOLFSSL_ERROR_WANT_READ);
      EXPECT_EQ(flight, (std::vector<int>{2, 11, 12, 14}));
    }
  }
}

// A thousand names in a directory, each with its own certificate; the one the client
// asked for is the one it gets.
TEST_F(ServerContextTest, SniPicksTheRightCertificateAmongAThousandNames) {
  TempDir names;
  TestPki& pki = TestPki::Shared();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    std::string name = "host" + std::to_string(i) + ".example.test";
    names.WritePair(name, pki.Issue({name}, KeyType::kEcdsaP256));
  }
  double made_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  printf("1000 certificates made and written in %.3f s\n", made_s);
  TlsServerSettings settings = DefaultSettings();
  settings.certificate_dir = names.path();
  start = std::chrono::steady_clock::now();
  absl::StatusOr<std::shared_ptr<const TlsServerContext>> context =
      TlsServerContext::Create(settings, *keys_);
  ASSERT_TRUE(context.ok()) << Msg(context.status());
  printf("indexed %zu names in %.3f ms\n", (*context)->name_count(),
         1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  EXPECT_EQ((*context)->name_count(), 1000u);
  auto shard = *TlsServerShardContext::Create(*context);
  for (int i : {0, 1, 499, 998, 999, 1}) {
    std::string name = "Host" + std::to_string(i) + ".Example.Test.";  // case and dot
    std::string want = "host" + std::to_string(i) + ".example.test";
    auto c = Connect(*shard, {.sni = name.c_str(), .check_name = want.c_str()});
    ASSERT_TRUE(c->result.ok) << name << ": " << c->result.client_error;
    EXPECT_EQ(testing::PeerCommonName(c->client.get()), want);
  }
  EXPECT_EQ(shard->stats().cache_builds, 5u);
  EXPECT_EQ(shard->stats().cache_hits, 1u);
  EXPECT_EQ(shard->cached_names(), 5u);
}

TEST_F(ServerContextTest, WildcardCoversOneLabelAndExactNameWins) {
  TempDir names;
  TestPki& pki = TestPki::Shared();
  names.WritePair("_.wild.test", pki.Issue({"*.wild.test"}, KeyType::kEcdsaP256));
  names.WritePair("exact.wild.test", pki.Issue({"exact.wild.test"}, KeyType::kEcdsaP256));
  TlsServerSettings settings = DefaultSettings();
  settings.certificate_dir = names.path();
  auto shard = Shard(settings);
  auto any = Connect(*shard, {.sni = "any.wild.test"});
  ASSERT_TRUE(any->result.ok) << any->result.client_error;
  EXPECT_EQ(testing::PeerCommonName(any->client.get()), "*.wild.test");
  auto exact = Connect(*shard, {.sni = "exact.wild.test"});
  ASSERT_TRUE(exact->result.ok);
  EXPECT_EQ(testing::PeerCommonName(exact->client.get()), "exact.wild.test");
  auto deeper = Connect(*shard, {.sni = "a.b.wild.test"});  // not covered: default
  EXPECT_EQ(testing::PeerCommonName(deeper->client.get()), "default.test");
}

TEST_F(ServerContextTest, UnknownOrMissingNameGetsTheDefault) {
  TempDir names;
  names.WritePair("known.test", TestPki::Shared().Issue({"known.test"}, KeyType::kEcdsaP256));
  TlsServerSettings settings = DefaultSettings();
  settings.certificate_dir = names.path();
  auto shard = Shard(settings);
  auto unknown = Connect(*shard, {.sni = "unknown.test"});
  // The client checks the name it asked for: the default certificate does not have it.
  EXPECT_FALSE(unknown->result.ok);
  EXPECT_EQ(testing::PeerCommonName(unknown->client.get()), "default.test");
  auto none = Connect(*shard, {});
  ASSERT_TRUE(none->result.ok) << none->result.client_error;
  EXPECT_EQ(testing::PeerCommonName(none->client.get()), "default.test");
  auto bad = Connect(*shard, {.sni = "bad name.test"});
  EXPECT_EQ(testing::PeerCommonName(bad->client.get()), "default.test");
  EXPECT_EQ(shard->stats().default_served, 3u);
}

// With or without a default pair: strict mode serves the default only to a known name
// whose own pair failed to load, never to an unknown or missing name.
TEST_F(ServerContextTest, StrictModeRefusesUnknownAndMissingNamesWithUnrecognizedName) {
  TempDir names;
  names.WritePair("known.test", TestPki::Shared().Issue({"known.test"}, KeyType::kEcdsaP256));
  for (bool with_default : {false, true}) {
    TlsServerSettings settings = with_default ? DefaultSettings() : TlsServerSettings{};
    settings.certificate_dir = names.path();
    settings.strict_sni = true;
    auto shard = Shard(settings);
    auto known = Connect(*shard, {.sni = "known.test"});
    ASSERT_TRUE(known->result.ok) << known->result.client_error;
    for (const char* sni : {"unknown.test", static_cast<const char*>(nullptr)}) {
      for (void* method : {wolfTLSv1_3_client_method(), wolfTLSv1_2_client_method()}) {
        auto c = Connect(*shard, {.method = method, .sni = sni});
        EXPECT_FALSE(c->result.ok) << with_default;
        WOLFSSL_ALERT_HISTORY alerts;
        wolfSSL_get_alert_history(c->client.get(), &alerts);
        EXPECT_EQ(alerts.last_rx.code, unrecognized_name) << (sni ? sni : "(no SNI)");
        EXPECT_EQ(alerts.last_rx.level, alert_fatal);
        EXPECT_NE(c->result.client_error.find("unrecognized_name"), std::string::npos)
            << c->result.client_error;
      }
    }
    EXPECT_EQ(shard->stats().refused, 4u) << with_default;
    EXPECT_EQ(shard->stats().default_served, 0u) << with_default;
  }
}

TEST_F(ServerContextTest, EcdsaAndRsaOnOneNamePickByWhatTheClientSupports) {
  TempDir names;
  TestPki& pki = TestPki::Shared();
  names.WritePair("dual.test", pki.Issue({"dual.test"}, KeyType::kEcdsaP256));
  names.WritePair("dual.test.rsa", pki.Issue({"dual.test"}, KeyType::kRsa2048));
  TlsServerSettings settings = DefaultSettings();
  settings.certificate_dir = names.path();
  auto shard = Shard(settings);
  ExpectDualSelection(*shard, "dual.test", "dual.test");
  EXPECT_EQ(shard->stats().rsa_served, 2u);
  // The default pair may be dual too.
  settings.certificate_rsa = dir_->path() + "/default.rsa.crt";
  settings.key_rsa = dir_->path() + "/default.rsa.key";
  auto dual_default = Shard(settings);
  ExpectDualSelection(*dual_default, nullptr, "default.test");
}

TEST_F(ServerContextTest, AlpnSelectsByServerPreferenceAndToleratesNoOverlap) {
  TlsServerSettings settings = DefaultSettings();
  settings.alpn = {"h2", "http/1.1"};
  auto shard = Shard(settings);
  auto both = Connect(*shard, {.alpn = "http/1.1,h2"});
  ASSERT_TRUE(both->result.ok);
  char* proto = nullptr;
  unsigned short proto_bytes = 0;
  ASSERT_EQ(wolfSSL_ALPN_GetProtocol(both->server.get(), &proto, &proto_bytes), WOLFSSL_SUCCESS);
  EXPECT_EQ(std::string(proto, proto_bytes), "h2");
  auto other = Connect(*shard, {.alpn = "imap"});
  ASSERT_TRUE(other->result.ok) << other->result.server_error;
  EXPECT_NE(wolfSSL_ALPN_GetProtocol(other->server.get(), &proto, &proto_bytes), WOLFSSL_SUCCESS);
  auto none = Connect(*shard, {});
  EXPECT_TRUE(none->result.ok);

  settings.alpn_strict = true;
  auto strict = Shard(settings);
  auto refused = Connect(*strict, {.alpn = "imap"});
  EXPECT_FALSE(refused->result.ok);
  EXPECT_NE(refused->result.client_error.find("no_application_protocol"), std::string::npos)
      << refused->result.client_error;
  auto fine = Connect(*strict, {.alpn = "imap,http/1.1"});
  ASSERT_TRUE(fine->result.ok) << fine->result.server_error;
  ASSERT_EQ(wolfSSL_ALPN_GetProtocol(fine->server.get(), &proto, &proto_bytes), WOLFSSL_SUCCESS);
  EXPECT_EQ(std::string(proto, proto_bytes), "http/1.1");
  EXPECT_TRUE(Connect(*strict, {})->result.ok);  // no ALPN offered: nothing to refuse
}

TEST_F(ServerContextTest, CacheBoundHoldsAndAnEvictedContextServesItsLiveSession) {
  TempDir names;
  TestPki& pki = TestPki::Shared();
  for (const char* name : {"a.test", "b.test", "c.test"}) {
    names.WritePair(name, pki.Issue({name}, KeyType::kEcdsaP256));
  }
  TlsServerSettings settings = DefaultSettings();
  settings.certificate_dir = names.path();
  settings.ctx_cache_size = 2;
  auto shard = Shard(settings);
  auto a = Connect(*shard, {.sni = "a.test"});
  ASSERT_TRUE(a->result.ok);
  auto b = Connect(*shard, {.sni = "b.test"});
  auto c = Connect(*shard, {.sni = "c.test"});  // evicts a.test's CTX
  ASSERT_TRUE(c->result.ok);
  EXPECT_EQ(shard->cached_names(), 2u);
  EXPECT_EQ(shard->stats().cache_evictions, 1u);
  // a's session still runs on the evicted CTX (its own reference keeps it).
  EXPECT_TRUE(testing::RoundTrip(a->client.get(), a->server.get()));
  auto a2 = Connect(*shard, {.sni = "a.test"});  // rebuilt, evicts b.test
  ASSERT_TRUE(a2->result.ok);
  EXPECT_EQ(shard->stats().cache_builds, 4u);
  EXPECT_EQ(shard->stats().cache_evictions, 2u);
  EXPECT_TRUE(testing::RoundTrip(b->client.get(), b->server.get()));
  // An older generation: its shard context goes away, its sessions go on.
  shard.reset();
  EXPECT_TRUE(testing::RoundTrip(a->client.get(), a->server.get()));
  EXPECT_TRUE(testing::RoundTrip(c->client.get(), c->server.get()));
}

// Reload: a new TlsServerContext from the changed directory; sessions of the old one
// keep working, new handshakes see the new files.
TEST_F(ServerContextTest, ReloadPicksUpChangedFilesAndOldSessionsGoOn) {
  TempDir names;
  TestPki& pki = TestPki::Shared();
  names.WritePair("site.test", pki.Issue({"site.test", "old.site.test"}, KeyType::kEcdsaP256));
  TlsServerSettings settings = DefaultSettings();
  settings.certificate_dir = names.path();
  auto old_shard = Shard(settings);
  auto old_session = Connect(*old_shard, {.sni = "site.test"});
  ASSERT_TRUE(old_session->result.ok);
  names.WritePair("site.test", pki.Issue({"site.test", "new.site.test"}, KeyType::kEcdsaP256));
  names.WritePair("added.test", pki.Issue({"added.test"}, KeyType::kEcdsaP256));
  // Until the reload the old generation serves what it loaded.
  EXPECT_FALSE(Connect(*old_shard, {.sni = "site.test", .check_name = "new.site.test"})->result.ok);
  auto new_shard = Shard(settings);  // the reload
  EXPECT_EQ(new_shard->context().name_count(), 2u);
  old_shard.reset();  // the old generation goes once its shards switch
  // The new certificate has new.site.test among its names; the old one did not.
  auto fresh = Connect(*new_shard, {.sni = "site.test", .check_name = "new.site.test"});
  EXPECT_TRUE(fresh->result.ok) << fresh->result.client_error;
  EXPECT_TRUE(Connect(*new_shard, {.sni = "added.test"})->result.ok);
  EXPECT_TRUE(testing::RoundTrip(old_session->client.get(), old_session->server.get()));
}

TEST_F(ServerContextTest, BrokenPairInTheDirectoryIsLoggedAndTheDefaultServed) {
  TempDir names;
  names.Write("broken.test.crt", "not a certificate\n");
  names.Write("broken.test.key", "not a key\n");
  TlsServerSettings settings = DefaultSettings();
  settings.certificate_dir = names.path();
  auto shard = Shard(settings);
  auto c = Connect(*shard, {.sni = "broken.test"});
  EXPECT_EQ(testing::PeerCommonName(c->client.get()), "default.test");
  EXPECT_EQ(shard->stats().cache_build_failures, 1u);
  Connect(*shard, {.sni = "broken.test"});
  EXPECT_EQ(shard->stats().cache_build_failures, 1u);  // not rebuilt on every handshake

  settings.certificate.clear();
  settings.key.clear();
  settings.strict_sni = true;
  auto strict = Shard(settings);
  EXPECT_FALSE(Connect(*strict, {.sni = "broken.test"})->result.ok);
}

// A failure that passes (a pair read in the middle of its renewal, no descriptor left)
// is tried again after a while, without a reload.
TEST_F(ServerContextTest, AFailedNameIsTriedAgainAfterAWhile) {
  TempDir names;
  names.Write("renewed.test.crt", "half written\n");
  names.Write("renewed.test.key", "half written\n");
  TlsServerSettings settings = DefaultSettings();
  settings.certificate_dir = names.path();
  settings.retry_failed_name_ms = 1000;
  auto shard = Shard(settings);
  EXPECT_EQ(testing::PeerCommonName(Connect(*shard, {.sni = "renewed.test"})->client.get()),
            "default.test");
  names.WritePair("renewed.test", TestPki::Shared().Issue({"renewed.test"}, KeyType::kEcdsaP256));
  EXPECT_EQ(testing::PeerCommonName(Connect(*shard, {.sni = "renewed.test"})->client.get()),
            "default.test");  // within the back-off
  usleep(1'100'000);
  EXPECT_EQ(testing::PeerCommonName(Connect(*shard, {.sni = "renewed.test"})->client.get()),
            "renewed.test");
  EXPECT_EQ(shard->stats().cache_build_failures, 1u);
}

TEST_F(ServerContextTest, ConfigErrorsNameTheFileAndTheReason) {
  TestPki& pki = TestPki::Shared();
  auto create_error = [](const TlsServerSettings& s) {
    auto context = TlsServerContext::Create(s, *keys_);
    return context.ok() ? std::string("ok") : Msg(context.status());
  };
  {
    TempDir names;
    names.WritePair("ok.test", pki.Issue({"ok.test"}, KeyType::kEcdsaP256));
    names.Write("lonely.test.crt", "x");
    TlsServerSettings s = DefaultSettings();
    s.certificate_dir = names.path();
    EXPECT_NE(create_error(s).find("'lonely.test.crt' has no partner 'lonely.test.key'"),
              std::string::npos)
        << create_error(s);
  }
  {
    TempDir files;
    std::string crt =
        files.Write("broken.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    files.Write("broken.key", pki.Issue({"x.test"}, KeyType::kEcdsaP256).key);
    TlsServerSettings s;
    s.certificate = crt;
    s.key = files.path() + "/broken.key";
    std::string e = create_error(s);
    EXPECT_NE(e.find(crt), std::string::npos) << e;
    EXPECT_NE(e.find("(-"), std::string::npos) << e;  // wolfSSL's reason and code
  }
  {
    TlsServerSettings s = DefaultSettings();
    s.key = dir_->path() + "/default.rsa.key";  // another key
    EXPECT_NE(create_error(s).find("does not belong to certificate"), std::string::npos)
        << create_error(s);
  }
  {
    TlsServerSettings s = DefaultSettings();
    s.certificate = dir_->path() + "/missing.crt";
    EXPECT_NE(create_error(s).find("missing.crt': No such file"), std::string::npos);
  }
  {
    TlsServerSettings s = DefaultSettings();
    s.certificate_rsa = dir_->path() + "/default.crt";  // ECDSA where RSA is wanted
    s.key_rsa = dir_->path() + "/default.key";
    EXPECT_NE(create_error(s).find("not an RSA key"), std::string::npos) << create_error(s);
  }
  EXPECT_NE(create_error(TlsServerSettings()).find("default pair"), std::string::npos);
  TlsServerSettings no_keys = DefaultSettings();
  EXPECT_FALSE(TlsServerContext::Create(no_keys, nullptr).ok());
  no_keys.session_tickets = false;
  EXPECT_TRUE(TlsServerContext::Create(no_keys, nullptr).ok());
}

}  // namespace
}  // namespace ringproxy
