#include "tests/tls/tls_testing.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tls/error_text.h"

namespace ringproxy::testing {

namespace {

[[noreturn]] void Die(const char* what) {
  fprintf(stderr, "tls_testing: %s\n", what);
  abort();
}

std::string ToPem(const std::vector<byte>& der, int der_bytes, int type) {
  std::vector<byte> pem(der_bytes * 2 + 256);
  int n = wc_DerToPem(der.data(), static_cast<word32>(der_bytes), pem.data(),
                      static_cast<word32>(pem.size()), type);
  if (n <= 0) Die("wc_DerToPem");
  return std::string(reinterpret_cast<char*>(pem.data()), n);
}

void AppendLength(size_t n, std::string* out) {
  if (n < 0x80) {
    out->push_back(static_cast<char>(n));
  } else if (n < 0x100) {
    out->push_back(static_cast<char>(0x81));
    out->push_back(static_cast<char>(n));
  } else {
    out->push_back(static_cast<char>(0x82));
    out->push_back(static_cast<char>(n >> 8));
    out->push_back(static_cast<char>(n));
  }
}

// GeneralNames: SEQUENCE OF [2] IA5String (dNSName).
std::string DnsAltNames(const std::vector<std::string>& names) {
  std::string body;
  for (const std::string& name : names) {
    body.push_back(static_cast<char>(0x82));
    AppendLength(name.size(), &body);
    body += name;
  }
  std::string der(1, 0x30);
  AppendLength(body.size(), &der);
  return der + body;
}

}  // namespace

struct TestPki::State {
  WC_RNG rng;
  ecc_key ca_key;
  ecc_key ecc_leaf;
  RsaKey rsa_leaf;
  bool rsa_ready = false;
  std::vector<byte> ca_der;
  std::string ecc_leaf_pem, rsa_leaf_pem;
  uint32_t serial = 1;
};

TestPki::TestPki(const std::string& ca_name) : state_(std::make_unique<State>()) {
  State& s = *state_;
  if (wc_InitRng(&s.rng) != 0 || wc_ecc_init(&s.ca_key) != 0 || wc_ecc_init(&s.ecc_leaf) != 0 ||
      wc_ecc_make_key_ex(&s.rng, 32, &s.ca_key, ECC_SECP256R1) != 0 ||
      wc_ecc_make_key_ex(&s.rng, 32, &s.ecc_leaf, ECC_SECP256R1) != 0) {
    Die("ECC key generation");
  }
  auto cert = std::make_unique<Cert>();
  wc_InitCert(cert.get());
  strncpy(cert->subject.commonName, ca_name.c_str(), CTC_NAME_SIZE - 1);
  cert->isCA = 1;
  cert->sigType = CTC_SHA256wECDSA;
  cert->daysValid = 30;
  s.ca_der.resize(8192);
  int n = wc_MakeCert_ex(cert.get(), s.ca_der.data(), s.ca_der.size(), ECC_TYPE, &s.ca_key, &s.rng);
  if (n > 0) {
    n = wc_SignCert_ex(cert->bodySz, cert->sigType, s.ca_der.data(), s.ca_der.size(), ECC_TYPE,
                       &s.ca_key, &s.rng);
  }
  if (n <= 0) Die("CA certificate");
  ca_pem_ = ToPem(s.ca_der, n, CERT_TYPE);
  s.ca_der.resize(n);
  std::vector<byte> der(4096);
  n = wc_EccKeyToDer(&s.ecc_leaf, der.data(), der.size());
  if (n <= 0) Die("wc_EccKeyToDer");
  s.ecc_leaf_pem = ToPem(der, n, ECC_PRIVATEKEY_TYPE);
}

TestPki::~TestPki() {
  State& s = *state_;
  wc_ecc_free(&s.ca_key);
  wc_ecc_free(&s.ecc_leaf);
  if (s.rsa_ready) wc_FreeRsaKey(&s.rsa_leaf);
  wc_FreeRng(&s.rng);
}

TestPki& TestPki::Shared() {
  static TestPki* pki = new TestPki();
  return *pki;
}

TestPair TestPki::Issue(const std::vector<std::string>& names, KeyType type) {
  State& s = *state_;
  if (type == KeyType::kRsa2048 && !s.rsa_ready) {
    std::vector<byte> der(4096);
    if (wc_InitRsaKey(&s.rsa_leaf, nullptr) != 0 ||
        wc_MakeRsaKey(&s.rsa_leaf, 2048, WC_RSA_EXPONENT, &s.rng) != 0) {
      Die("RSA key generation");
    }
    int n = wc_RsaKeyToDer(&s.rsa_leaf, der.data(), der.size());
    if (n <= 0) Die("wc_RsaKeyToDer");
    s.rsa_leaf_pem = ToPem(der, n, PRIVATEKEY_TYPE);
    s.rsa_ready = true;
  }
  auto cert = std::make_unique<Cert>();
  wc_InitCert(cert.get());
  strncpy(cert->subject.commonName, names.at(0).c_str(), CTC_NAME_SIZE - 1);
  cert->selfSigned = 0;
  cert->sigType = CTC_SHA256wECDSA;
  cert->daysValid = 30;
  uint32_t serial = ++s.serial;
  cert->serial[0] = 0x01;
  memcpy(cert->serial + 1, &serial, sizeof(serial));
  cert->serialSz = 1 + sizeof(serial);
  std::string alt = DnsAltNames(names);
  if (alt.size() > sizeof(cert->altNames)) Die("too many alt names");
  memcpy(cert->altNames, alt.data(), alt.size());
  cert->altNamesSz = static_cast<int>(alt.size());
  if (wc_SetIssuerBuffer(cert.get(), s.ca_der.data(), static_cast<int>(s.ca_der.size())) != 0) {
    Die("wc_SetIssuerBuffer");
  }
  std::vector<byte> der(8192 + alt.size());
  bool rsa = type == KeyType::kRsa2048;
  int n = wc_MakeCert_ex(cert.get(), der.data(), der.size(), rsa ? RSA_TYPE : ECC_TYPE,
                         rsa ? static_cast<void*>(&s.rsa_leaf) : static_cast<void*>(&s.ecc_leaf),
                         &s.rng);
  if (n > 0) {
    n = wc_SignCert_ex(cert->bodySz, cert->sigType, der.data(), der.size(), ECC_TYPE, &s.ca_key,
                       &s.rng);
  }
  if (n <= 0) Die("leaf certificate");
  return TestPair{ToPem(der, n, CERT_TYPE), rsa ? s.rsa_leaf_pem : s.ecc_leaf_pem};
}

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/rp_tls_XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) Die("mkdtemp");
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (DIR* dir = opendir(path_.c_str())) {
    while (dirent* e = readdir(dir)) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
        unlink((path_ + "/" + e->d_name).c_str());
      }
    }
    closedir(dir);
  }
  rmdir(path_.c_str());
}

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  std::string path = path_ + "/" + name;
  FILE* f = fopen(path.c_str(), "wb");
  if (f == nullptr || fwrite(content.data(), 1, content.size(), f) != content.size()) {
    Die("write file");
  }
  fclose(f);
  return path;
}

void TempDir::WritePair(const std::string& stem, const TestPair& pair) const {
  Write(stem + ".crt", pair.certificate);
  Write(stem + ".key", pair.key);
}

int MemoryRecv(WOLFSSL* /*ssl*/, char* buf, int size, void* ctx) {
  auto* end = static_cast<MemoryLink::End*>(ctx);
  MemoryLink::Pipe* rx = end->rx;
  if (rx->pending() == 0) {
    return rx->eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
  }
  size_t n = std::min({rx->pending(), static_cast<size_t>(size), end->max_read});
  memcpy(buf, rx->data.data() + rx->read, n);
  rx->read += n;
  if (rx->read == rx->data.size()) {
    rx->data.clear();
    rx->read = 0;
  }
  return static_cast<int>(n);
}

int MemorySend(WOLFSSL* /*ssl*/, char* buf, int size, void* ctx) {
  auto* end = static_cast<MemoryLink::End*>(ctx);
  if (end->block_writes) return WOLFSSL_CBIO_ERR_WANT_WRITE;
  end->tx->data.append(buf, static_cast<size_t>(size));
  if (end->tx->record) end->tx->history.append(buf, static_cast<size_t>(size));
  return size;
}

void MemoryLink::Attach(WOLFSSL* client_ssl, WOLFSSL* server_ssl) {
  for (auto [ssl, end] : {std::pair{client_ssl, &client}, std::pair{server_ssl, &server}}) {
    if (ssl == nullptr) continue;
    wolfSSL_SSLSetIORecv(ssl, MemoryRecv);
    wolfSSL_SSLSetIOSend(ssl, MemorySend);
    wolfSSL_SetIOReadCtx(ssl, end);
    wolfSSL_SetIOWriteCtx(ssl, end);
  }
}

namespace {

// One step of one side: true when done, false to go on; *failed when it failed.
bool Step(WOLFSSL* ssl, bool server, int* ret, bool* failed) {
  *ret = server ? wolfSSL_accept(ssl) : wolfSSL_connect(ssl);
  if (*ret == WOLFSSL_SUCCESS) return true;
  int error = wolfSSL_get_error(ssl, *ret);
  *failed = error != WOLFSSL_ERROR_WANT_READ && error != WOLFSSL_ERROR_WANT_WRITE;
  return false;
}

}  // namespace

HandshakeResult Handshake(WOLFSSL* client, WOLFSSL* server, MemoryLink& link,
                          const std::function<void(MemoryLink&)>& before_accept) {
  HandshakeResult r;
  bool client_done = false, server_done = false, client_failed = false, server_failed = false;
  bool first_accept = true;
  for (int round = 0; round < 64 && !(client_done && server_done); ++round) {
    if (!client_done) client_done = Step(client, false, &r.client_ret, &client_failed);
    if (client_failed) {
      // Let the server read the alert.
      if (!server_done) Step(server, true, &r.server_ret, &server_failed);
      break;
    }
    if (!server_done) {
      if (first_accept && before_accept) before_accept(link);
      first_accept = false;
      server_done = Step(server, true, &r.server_ret, &server_failed);
    }
    if (server_failed) {
      if (!client_done) Step(client, false, &r.client_ret, &client_failed);
      break;
    }
  }
  r.ok = client_done && server_done;
  if (!client_done) r.client_error = TlsErrorText(client, r.client_ret);
  if (!server_done) r.server_error = TlsErrorText(server, r.server_ret);
  return r;
}

bool RoundTrip(WOLFSSL* client, WOLFSSL* server) {
  const char kPing[] = "ping", kPong[] = "pong";
  char buf[16];
  if (wolfSSL_write(server, kPing, 4) != 4) return false;
  if (wolfSSL_read(client, buf, sizeof(buf)) != 4 || memcmp(buf, kPing, 4) != 0) return false;
  if (wolfSSL_write(client, kPong, 4) != 4) return false;
  return wolfSSL_read(server, buf, sizeof(buf)) == 4 && memcmp(buf, kPong, 4) == 0;
}

std::vector<int> PlaintextHandshakeTypes(const std::string& bytes) {
  std::vector<int> types;
  size_t i = 0;
  while (i + 5 <= bytes.size()) {
    auto type = static_cast<uint8_t>(bytes[i]);
    size_t length = static_cast<uint8_t>(bytes[i + 3]) << 8 | static_cast<uint8_t>(bytes[i + 4]);
    if (type != 22 || i + 5 + length > bytes.size()) break;
    // Several messages may share a record.
    for (size_t j = i + 5; j + 4 <= i + 5 + length;) {
      types.push_back(static_cast<uint8_t>(bytes[j]));
      size_t body = static_cast<uint8_t>(bytes[j + 1]) << 16 |
                    static_cast<uint8_t>(bytes[j + 2]) << 8 | static_cast<uint8_t>(bytes[j + 3]);
      j += 4 + body;
    }
    i += 5 + length;
  }
  return types;
}

WOLFSSL_CTX* NewTestClientCtx(void* method, const std::string& ca_pem) {
  WOLFSSL_CTX* ctx = wolfSSL_CTX_new(static_cast<WOLFSSL_METHOD*>(method));
  if (ctx == nullptr) Die("wolfSSL_CTX_new");
  if (ca_pem.empty()) {
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, nullptr);
  } else {
    if (wolfSSL_CTX_load_verify_buffer(ctx, reinterpret_cast<const unsigned char*>(ca_pem.data()),
                                       static_cast<long>(ca_pem.size()),
                                       WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
      Die("load CA");
    }
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

void SslDeleter::operator()(WOLFSSL* ssl) const { wolfSSL_free(ssl); }
void CtxDeleter::operator()(WOLFSSL_CTX* ctx) const { wolfSSL_CTX_free(ctx); }

std::string PeerCommonName(WOLFSSL* client) {
  WOLFSSL_X509* peer = wolfSSL_get_peer_certificate(client);
  if (peer == nullptr) return "";
  const char* cn = wolfSSL_X509_get_subjectCN(peer);
  std::string out = cn != nullptr ? cn : "";
  wolfSSL_X509_free(peer);
  return out;
}

std::string PeerKeyType(WOLFSSL* client) {
  WOLFSSL_X509* peer = wolfSSL_get_peer_certificate(client);
  if (peer == nullptr) return "";
  int type = wolfSSL_X509_get_pubkey_type(peer);
  wolfSSL_X509_free(peer);
  return type == ECDSAk ? "EC" : type == RSAk ? "RSA" : "other";
}

}  // namespace ringproxy::testing
