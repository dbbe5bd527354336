// Server CPU per TLS handshake with the product's contexts (tls/server_context.h),
// in memory: full handshakes with an ECDSA P-256 and an RSA-2048 certificate, and
// resumptions with a session ticket, TLS 1.3 and 1.2. Only the server's calls are timed
// (thread CPU time of NewSession + wolfSSL_accept + wolfSSL_free); the wolfSSL client
// runs untimed in the same thread. A CPU-only number to compare builds and changes by:
//   build/release/bench/tls_handshake_bench
#include <benchmark/benchmark.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <ctime>
#include <map>
#include <memory>
#include <string>

#include "tests/tls/tls_testing.h"
#include "tls/library.h"
#include "tls/server_context.h"
#include "tls/ticket_keys.h"

namespace ringproxy {
namespace {

using testing::CtxPtr;
using testing::KeyType;
using testing::MemoryLink;
using testing::SslPtr;
using testing::TempDir;
using testing::TestPki;

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// One server shard per certificate type, made once.
TlsServerShardContext& Shard(KeyType type) {
  static std::map<KeyType, std::unique_ptr<TlsServerShardContext>>* shards =
      new std::map<KeyType, std::unique_ptr<TlsServerShardContext>>();
  auto& shard = (*shards)[type];
  if (shard == nullptr) {
    (void)InitTlsLibrary();
    static TempDir* dir = new TempDir();
    std::string stem = type == KeyType::kRsa2048 ? "rsa" : "ecdsa";
    dir->WritePair(stem, TestPki::Shared().Issue({"bench.test"}, type));
    TlsServerSettings s;
    s.certificate = dir->path() + "/" + stem + ".crt";
    s.key = dir->path() + "/" + stem + ".key";
    uint8_t secret[TicketKeys::kMasterSecretBytes] = {42};
    shard = *TlsServerShardContext::Create(
        *TlsServerContext::Create(s, TicketKeys::FromSecret(secret, 3600)));
  }
  return *shard;
}

// One handshake; returns the server's CPU seconds. `session` (optional) is resumed from,
// `keep` (optional) gets the client's session afterwards (with its ticket).
double Handshake(TlsServerShardContext& shard, WOLFSSL_CTX* client_ctx, WOLFSSL_SESSION* session,
                 WOLFSSL_SESSION** keep, bool* ok, std::string* label = nullptr) {
  SslPtr client(wolfSSL_new(client_ctx));
  wolfSSL_UseSessionTicket(client.get());
  if (session != nullptr) wolfSSL_set_session(client.get(), session);
  double cpu = 0;
  double start = ThreadCpuSeconds();
  SslPtr server(shard.NewSession());
  cpu += ThreadCpuSeconds() - start;
  MemoryLink link;
  link.Attach(client.get(), server.get());
  bool client_done = false, server_done = false;
  for (int i = 0; i < 16 && !(client_done && server_done); ++i) {
    if (!client_done) client_done = wolfSSL_connect(client.get()) == WOLFSSL_SUCCESS;
    if (!server_done) {
      start = ThreadCpuSeconds();
      server_done = wolfSSL_accept(server.get()) == WOLFSSL_SUCCESS;
      cpu += ThreadCpuSeconds() - start;
    }
  }
  *ok = client_done && server_done && (session == nullptr || wolfSSL_session_reused(server.get()));
  if (label != nullptr) {
    const char* group = wolfSSL_get_curve_name(server.get());
    *label = std::string(wolfSSL_get_cipher_name(server.get())) + " " + (group ? group : "-");
  }
  if (keep != nullptr) {
    char c;
    wolfSSL_read(client.get(), &c, 1);  // takes in a TLS 1.3 ticket
    *keep = wolfSSL_get1_session(client.get());
  }
  start = ThreadCpuSeconds();
  server.reset();
  cpu += ThreadCpuSeconds() - start;
  return cpu;
}

void BM_Handshake(benchmark::State& state, KeyType type, bool tls13, bool resumed) {
  TlsServerShardContext& shard = Shard(type);
  CtxPtr client_ctx(testing::NewTestClientCtx(
      tls13 ? wolfTLSv1_3_client_method() : wolfTLSv1_2_client_method(), ""));
  WOLFSSL_SESSION* session = nullptr;
  bool ok = true;
  if (resumed) Handshake(shard, client_ctx.get(), nullptr, &session, &ok);
  std::string label;
  Handshake(shard, client_ctx.get(), session, nullptr, &ok, &label);  // warm, and what it uses
  double total = 0;
  for (auto _ : state) {
    double cpu = Handshake(shard, client_ctx.get(), session, nullptr, &ok);
    if (!ok) {
      state.SkipWithError("handshake failed");
      break;
    }
    state.SetIterationTime(cpu);
    total += cpu;
  }
  if (session != nullptr) wolfSSL_SESSION_free(session);
  state.SetLabel(label);
  if (state.iterations() > 0 && total > 0) {
    state.counters["server_us"] = 1e6 * total / static_cast<double>(state.iterations());
    state.counters["handshakes_per_s"] = static_cast<double>(state.iterations()) / total;
  }
}

BENCHMARK_CAPTURE(BM_Handshake, Tls13FullEcdsaP256, KeyType::kEcdsaP256, true, false)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_Handshake, Tls13FullRsa2048, KeyType::kRsa2048, true, false)->UseManualTime();
BENCHMARK_CAPTURE(BM_Handshake, Tls12FullEcdsaP256, KeyType::kEcdsaP256, false, false)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_Handshake, Tls12FullRsa2048, KeyType::kRsa2048, false, false)->UseManualTime();
BENCHMARK_CAPTURE(BM_Handshake, Tls13ResumedTicket, KeyType::kEcdsaP256, true, true)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_Handshake, Tls12ResumedTicket, KeyType::kEcdsaP256, false, true)
    ->UseManualTime();

}  // namespace
}  // namespace ringproxy

BENCHMARK_MAIN();
