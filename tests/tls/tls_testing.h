// Test and benchmark support for the TLS layer: a private PKI built in-process with
// wolfCrypt (WOLFSSL_CERT_GEN is compiled in: a thousand certificates take well under a
// second, no openssl process per certificate), a temporary directory, and an in-memory
// link that connects a client WOLFSSL and a server WOLFSSL through per-session I/O
// callbacks, with a driver that runs non-blocking handshakes to the end.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct WOLFSSL;
struct WOLFSSL_CTX;

namespace ringproxy::testing {

enum class KeyType { kEcdsaP256, kRsa2048 };

struct TestPair {
  std::string certificate;  // PEM, leaf only (the CA is TestPki::ca_pem)
  std::string key;          // PEM
};

// A CA and one leaf key per type, reused for every certificate it issues (key
// generation, RSA above all, is what would be slow).
class TestPki {
 public:
  explicit TestPki(const std::string& ca_name = "ringproxy test CA");
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  // The process-wide one most tests share.
  static TestPki& Shared();

  const std::string& ca_pem() const { return ca_pem_; }
  // A leaf for `names` (the first is also the common name), signed by the CA.
  TestPair Issue(const std::vector<std::string>& names, KeyType type);

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::string ca_pem_;
};

// A directory under $TMPDIR removed (with its files) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const;
  void WritePair(const std::string& stem, const TestPair& pair) const;  // stem.crt/.key

 private:
  std::string path_;
};

// Two byte queues between a client and a server session.
class MemoryLink {
 public:
  struct Pipe {
    std::string data;
    size_t read = 0;
    bool eof = false;     // the writer closed: reads at the end give CONN_CLOSE
    bool record = false;  // keep every byte ever written in `history`
    std::string history;
    size_t pending() const { return data.size() - read; }
  };
  struct End {
    Pipe* rx = nullptr;
    Pipe* tx = nullptr;
    bool block_writes = false;   // sends answer WANT_WRITE
    size_t max_read = SIZE_MAX;  // recv hands out at most this many bytes per call
  };

  // Sets both sessions' I/O callbacks and contexts.
  void Attach(WOLFSSL* client, WOLFSSL* server);

  Pipe to_server;
  Pipe to_client;
  End client{&to_client, &to_server};
  End server{&to_server, &to_client};
};

// Per-session I/O callbacks over an End (exposed for tests that attach one side).
int MemoryRecv(WOLFSSL* ssl, char* buf, int size, void* end);
int MemorySend(WOLFSSL* ssl, char* buf, int size, void* end);

struct HandshakeResult {
  bool ok = false;
  int client_ret = 0;
  int server_ret = 0;
  std::string client_error;  // TlsErrorText when the side failed
  std::string server_error;
};

// Alternates wolfSSL_connect and wolfSSL_accept until both finish or one fails (the
// other then runs once more, to read the alert). `before_accept` runs once, before the
// first wolfSSL_accept, with the link (e.g. to hand the ClientHello to
// TlsServerShardContext::NoteClientHello or to tamper with it).
HandshakeResult Handshake(WOLFSSL* client, WOLFSSL* server, MemoryLink& link,
                          const std::function<void(MemoryLink&)>& before_accept = nullptr);

// Server writes a message, client reads it; then the reverse. Makes a TLS 1.3 client
// take in the server's NewSessionTicket. True when both arrived intact.
bool RoundTrip(WOLFSSL* client, WOLFSSL* server);

// The handshake message types in the plaintext records at the start of `bytes` (up to
// the first ChangeCipherSpec or application record): e.g. {2, 11, 12, 14} for a full
// TLS 1.2 server flight, {2} for a resumption.
std::vector<int> PlaintextHandshakeTypes(const std::string& bytes);

// wolfSSL client CTX for tests: `method` e.g. wolfTLSv1_2_client_method(); trusts
// `ca_pem` and verifies the server when ca_pem is not empty.
WOLFSSL_CTX* NewTestClientCtx(void* method, const std::string& ca_pem);

struct SslDeleter {
  void operator()(WOLFSSL* ssl) const;
};
struct CtxDeleter {
  void operator()(WOLFSSL_CTX* ctx) const;
};
using SslPtr = std::unique_ptr<WOLFSSL, SslDeleter>;
using CtxPtr = std::unique_ptr<WOLFSSL_CTX, CtxDeleter>;

// The subject common name of the certificate the client received ("" if none).
std::string PeerCommonName(WOLFSSL* client);
// The peer certificate's public key type: "EC", "RSA" or "".
std::string PeerKeyType(WOLFSSL* client);

}  // namespace ringproxy::testing
