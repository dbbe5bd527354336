// What a TLS session costs at rest, and which locks a server handshake takes.
//
// Memory: every wolfSSL allocation goes through a counting allocator
// (wolfSSL_SetAllocators, installed before anything else runs) that tags each block
// with the side whose call made it, so the bytes a server session holds are measured
// apart from its client peer. The test prints the numbers (sizeof(WOLFSSL), a session
// at rest, the peak during a handshake) and checks the project's target: an idle
// session holds no record buffers, also after 64 KiB went through it.
//
// Locks: the binary is linked with -Wl,--wrap=wc_LockMutex, so every mutex wolfSSL
// takes passes through __wrap_wc_LockMutex. A server handshake and its I/O (full or
// resumed, TLS 1.2 or 1.3, tickets on) may take only the reference-count mutexes of the
// CTXs its session uses, never the session cache's global mutex; wolfSSL_new takes that
// one once in this wolfSSL build (the test says why).
#include <gtest/gtest.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tests/tls/tls_testing.h"
#include "tls/error_text.h"
#include "tls/library.h"
#include "tls/server_context.h"
#include "tls/ticket_keys.h"

namespace ringproxy {
namespace {

enum Tag { kOther = 0, kServer = 1, kClient = 2 };
thread_local Tag t_tag = kOther;
struct Usage {
  long bytes = 0;
  long blocks = 0;
  long peak = 0;
};
Usage g_usage[3];
std::vector<size_t>* g_sizes_of_new = nullptr;             // while set: sizes allocated, in order
std::map<const void*, size_t>* g_server_blocks = nullptr;  // live server blocks

struct alignas(16) Header {
  size_t size;
  Tag tag;
};

void Count(Tag tag, long bytes, long blocks) {
  Usage& u = g_usage[tag];
  u.bytes += bytes;
  u.blocks += blocks;
  u.peak = std::max(u.peak, u.bytes);
}

void* CountingMalloc(size_t size) {
  auto* h = static_cast<Header*>(malloc(sizeof(Header) + size));
  if (h == nullptr) return nullptr;
  h->size = size;
  h->tag = t_tag;
  Count(t_tag, static_cast<long>(size), 1);
  if (g_sizes_of_new != nullptr) g_sizes_of_new->push_back(size);
  if (g_server_blocks != nullptr && t_tag == kServer) (*g_server_blocks)[h + 1] = size;
  return h + 1;
}

void CountingFree(void* p) {
  if (p == nullptr) return;
  Header* h = static_cast<Header*>(p) - 1;
  Count(h->tag, -static_cast<long>(h->size), -1);
  if (g_server_blocks != nullptr) g_server_blocks->erase(p);
  free(h);
}

void* CountingRealloc(void* p, size_t size) {
  if (p == nullptr) return CountingMalloc(size);
  Header* old = static_cast<Header*>(p) - 1;
  Tag tag = old->tag;
  long old_size = static_cast<long>(old->size);
  auto* h = static_cast<Header*>(realloc(old, sizeof(Header) + size));
  if (h == nullptr) return nullptr;
  h->size = size;
  Count(tag, static_cast<long>(size) - old_size, 0);
  if (g_server_blocks != nullptr) {
    g_server_blocks->erase(p);
    if (tag == kServer) (*g_server_blocks)[h + 1] = size;
  }
  return h + 1;
}

// Before main: no wolfSSL allocation may happen with another allocator.
const bool g_allocators_installed =
    wolfSSL_SetAllocators(CountingMalloc, CountingFree, CountingRealloc) == 0;

class ScopedTag {
 public:
  explicit ScopedTag(Tag tag) : saved_(t_tag) { t_tag = tag; }
  ~ScopedTag() { t_tag = saved_; }

 private:
  Tag saved_;
};

}  // namespace
}  // namespace ringproxy

// ---- lock recording (the linker sends wolfSSL's wc_LockMutex calls here) -----------
extern "C" int __real_wc_LockMutex(wolfSSL_Mutex* m);
namespace {
bool g_recording = false;
std::vector<const void*> g_locked;
}  // namespace
extern "C" int __wrap_wc_LockMutex(wolfSSL_Mutex* m) {
  if (g_recording) g_locked.push_back(m);
  return __real_wc_LockMutex(m);
}

namespace ringproxy {
namespace {

using testing::CtxPtr;
using testing::KeyType;
using testing::MemoryLink;
using testing::SslPtr;
using testing::TempDir;
using testing::TestPki;

class Recording {
 public:
  Recording() {
    g_locked.clear();
    g_recording = true;
  }
  ~Recording() { g_recording = false; }
};

// The mutex wolfSSL locks to count references to `ctx` (found by taking one).
const void* RefCountMutex(WOLFSSL_CTX* ctx) {
  Recording r;
  wolfSSL_CTX_up_ref(ctx);
  g_recording = false;
  wolfSSL_CTX_free(ctx);
  EXPECT_EQ(g_locked.size(), 1u);
  return g_locked.empty() ? nullptr : g_locked[0];
}

class SessionMemoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(g_allocators_installed);
    ASSERT_TRUE(InitTlsLibrary().ok());
    dir_ = new TempDir();
    dir_->WritePair("default", TestPki::Shared().Issue({"default.test"}, KeyType::kEcdsaP256));
    names_ = new TempDir();
    names_->WritePair("name.test", TestPki::Shared().Issue({"name.test"}, KeyType::kEcdsaP256));
    TlsServerSettings s;
    s.certificate = dir_->path() + "/default.crt";
    s.key = dir_->path() + "/default.key";
    s.certificate_dir = names_->path();
    uint8_t secret[TicketKeys::kMasterSecretBytes] = {9};
    context_ = new std::shared_ptr<const TlsServerContext>(
        *TlsServerContext::Create(s, TicketKeys::FromSecret(secret, 3600)));
  }
  static void TearDownTestSuite() {
    delete context_;
    delete names_;
    delete dir_;
  }

  struct Pair {
    CtxPtr client_ctx;
    SslPtr client;
    SslPtr server;
    MemoryLink link;
  };
  // What the TLS stream does before the server's first read: hand it the ClientHello.
  static void NoteHello(Pair& p) {
    const MemoryLink::Pipe& in = p.link.to_server;
    TlsServerShardContext::NoteClientHello(
        p.server.get(), reinterpret_cast<const uint8_t*>(in.data.data()) + in.read,
        in.data.size() - in.read);
  }

  // A connected pair; each side's allocations are tagged with its side.
  // `method` makes the client's WOLFSSL_METHOD: wolfSSL_CTX_new takes ownership of it
  // (it is freed with the CTX), so each CTX needs a fresh one.
  using MethodFn = WOLFSSL_METHOD* (*)();
  std::unique_ptr<Pair> Connect(TlsServerShardContext& shard, MethodFn method,
                                WOLFSSL_SESSION* resume = nullptr) {
    auto p = std::make_unique<Pair>();
    {
      ScopedTag tag(kClient);
      p->client_ctx.reset(testing::NewTestClientCtx(method(), TestPki::Shared().ca_pem()));
      p->client.reset(wolfSSL_new(p->client_ctx.get()));
      wolfSSL_UseSNI(p->client.get(), WOLFSSL_SNI_HOST_NAME, "name.test", 9);
      wolfSSL_UseSessionTicket(p->client.get());
      if (resume != nullptr) wolfSSL_set_session(p->client.get(), resume);
    }
    {
      ScopedTag tag(kServer);
      p->server.reset(shard.NewSession());
    }
    p->link.Attach(p->client.get(), p->server.get());
    bool client_done = false, server_done = false;
    for (int i = 0; i < 20 && !(client_done && server_done); ++i) {
      if (!client_done) {
        ScopedTag tag(kClient);
        client_done = wolfSSL_connect(p->client.get()) == WOLFSSL_SUCCESS;
      }
      if (i == 0) NoteHello(*p);
      if (!server_done) {
        ScopedTag tag(kServer);
        server_done = wolfSSL_accept(p->server.get()) == WOLFSSL_SUCCESS;
      }
    }
    EXPECT_TRUE(client_done && server_done)
        << TlsErrorText(p->client.get(), -1) << " / " << TlsErrorText(p->server.get(), -1);
    Exchange(*p, 4);  // the client takes in its TLS 1.3 ticket
    return p;
  }

  // `bytes` each way, read to the end (nothing left pending in wolfSSL).
  static void Exchange(Pair& p, size_t bytes) {
    std::string out(bytes, 'x'), in(bytes, '\0');
    for (auto [writer, reader, writer_tag, reader_tag] :
         {std::tuple{p.server.get(), p.client.get(), kServer, kClient},
          std::tuple{p.client.get(), p.server.get(), kClient, kServer}}) {
      {
        ScopedTag tag(writer_tag);
        ASSERT_EQ(wolfSSL_write(writer, out.data(), static_cast<int>(bytes)),
                  static_cast<int>(bytes));
      }
      ScopedTag tag(reader_tag);
      size_t got = 0;
      while (got < bytes) {
        int n = wolfSSL_read(reader, in.data() + got, static_cast<int>(bytes - got));
        ASSERT_GT(n, 0);
        got += static_cast<size_t>(n);
      }
      char extra;
      EXPECT_EQ(wolfSSL_read(reader, &extra, 1), -1);  // drained: WANT_READ
      EXPECT_EQ(wolfSSL_pending(reader), 0);
    }
  }

  static TempDir* dir_;
  static TempDir* names_;
  static std::shared_ptr<const TlsServerContext>* context_;
};

TempDir* SessionMemoryTest::dir_ = nullptr;
TempDir* SessionMemoryTest::names_ = nullptr;
std::shared_ptr<const TlsServerContext>* SessionMemoryTest::context_ = nullptr;

// The live server blocks, largest first, as "37512 10864 1280 ...".
std::string BlockSizes(std::vector<size_t>* sizes = nullptr) {
  std::vector<size_t> v;
  for (const auto& [block, size] : *g_server_blocks) v.push_back(size);
  std::sort(v.rbegin(), v.rend());
  std::string out;
  for (size_t size : v) out += std::to_string(size) + " ";
  if (sizes != nullptr) *sizes = v;
  return out;
}

TEST_F(SessionMemoryTest, IdleSessionsHoldNoRecordBuffers) {
  auto shard = *TlsServerShardContext::Create(*context_);
  std::vector<size_t> new_sizes;
  g_sizes_of_new = &new_sizes;
  SslPtr probe(shard->NewSession());
  g_sizes_of_new = nullptr;
  ASSERT_GE(new_sizes.size(), 2u);
  // wolfSSL_new's first allocation is the WOLFSSL itself (ssl.c wolfSSL_new_ex); the
  // largest of the others is its WOLFSSL_SESSION, which in this build carries room for a
  // peer chain of 9 certificates (SESSION_CERTS, forced on by --enable-distro).
  const size_t ssl_bytes = new_sizes[0];
  const size_t session_bytes = *std::max_element(new_sizes.begin() + 1, new_sizes.end());
  printf(
      "sizeof(WOLFSSL) = %zu bytes, WOLFSSL_SESSION = %zu bytes; wolfSSL_new makes %zu "
      "blocks, %ld bytes\n",
      ssl_bytes, session_bytes, new_sizes.size(), g_usage[kOther].bytes);
  probe.reset();
  Connect(*shard, wolfTLSv1_3_client_method);  // builds name.test's CTX: not the session's

  std::map<const void*, size_t> blocks;
  g_server_blocks = &blocks;
  struct Unset {
    ~Unset() { g_server_blocks = nullptr; }
  } unset;
  for (auto [name, method] : {std::pair{"TLS 1.3", &wolfTLSv1_3_client_method},
                              std::pair{"TLS 1.2", &wolfTLSv1_2_client_method}}) {
    g_usage[kServer] = Usage();
    blocks.clear();
    auto p = Connect(*shard, method);
    long at_rest = g_usage[kServer].bytes, peak = g_usage[kServer].peak;
    std::vector<size_t> sizes;
    std::string listing = BlockSizes(&sizes);
    // No record buffer (16 KiB + overhead): besides the WOLFSSL and its session (when
    // the build keeps one as large as SESSION_CERTS makes it), every block the idle
    // session keeps is small.
    ASSERT_GE(sizes.size(), 2u);
    size_t first_small = 0;
    while (first_small < sizes.size() &&
           (sizes[first_small] == ssl_bytes || sizes[first_small] == session_bytes)) {
      ++first_small;
    }
    EXPECT_GE(first_small, 1u) << name << ": the WOLFSSL itself is not kept: " << listing;
    for (size_t i = first_small; i < sizes.size(); ++i) {
      EXPECT_LT(sizes[i], 4096u) << name << ": " << listing;
    }
    Exchange(*p, 64 * 1024);
    EXPECT_EQ(g_usage[kServer].bytes, at_rest) << name << ": 64 KiB each way left memory behind";
    WOLFSSL_SESSION* session = wolfSSL_get1_session(p->client.get());
    long client_before = g_usage[kClient].bytes;
    p.reset();
    long client_at_rest = client_before - g_usage[kClient].bytes;
    g_usage[kServer] = Usage();
    auto resumed = Connect(*shard, method, session);
    wolfSSL_SESSION_free(session);
    EXPECT_EQ(wolfSSL_session_reused(resumed->server.get()), 1);
    printf(
        "%s server session at rest: %ld bytes in %zu blocks (%ld without the WOLFSSL and "
        "its WOLFSSL_SESSION), handshake peak %ld; resumed: %ld bytes; a wolfSSL client "
        "session at rest: %ld bytes\n  blocks: %s\n",
        name, at_rest, sizes.size(), at_rest - static_cast<long>(ssl_bytes + session_bytes), peak,
        g_usage[kServer].bytes, client_at_rest, listing.c_str());
  }
}

// The process-wide session cache's mutex: wolfSSL_SESSION_new takes it (and nothing
// else) in this build — see the test below; null when it takes none.
const void* GlobalSessionCacheMutex() {
  Recording r;
  WOLFSSL_SESSION* session = wolfSSL_SESSION_new();
  g_recording = false;
  wolfSSL_SESSION_free(session);
  EXPECT_LE(g_locked.size(), 1u);  // none in a wolfSSL built with --disable-stunnel
  return g_locked.empty() ? nullptr : g_locked[0];
}

// The handshake and the I/O of a server session take no lock but the reference counts
// of the CTXs the session uses (only its shard touches those). One global lock remains,
// outside our reach: wolfSSL_new -> wolfSSL_NewSession -> wolfSSL_SESSION_set_ex_data
// (HAVE_STUNNEL, which --enable-distro turns on) looks the new, empty session up in the
// process-wide session cache under its mutex, once per session (ssl.c wolfSSL_NewSession,
// SESSION_ex_data_cache_update). A wolfSSL built with --disable-stunnel does not.
TEST_F(SessionMemoryTest, ServerHandshakesTakeOnlyTheirCtxReferenceLocks) {
  auto shard = *TlsServerShardContext::Create(*context_);
  const void* global = GlobalSessionCacheMutex();
  for (MethodFn method : {&wolfTLSv1_3_client_method, &wolfTLSv1_2_client_method}) {
    // Warm: the name's CTX is built (a cache miss may lock what it likes).
    auto first = Connect(*shard, method);
    WOLFSSL_SESSION* ticket = wolfSSL_get1_session(first->client.get());
    const void* name_ctx = RefCountMutex(wolfSSL_get_SSL_CTX(first->server.get()));
    SslPtr probe(shard->NewSession());
    const void* default_ctx = RefCountMutex(wolfSSL_get_SSL_CTX(probe.get()));
    probe.reset();
    for (WOLFSSL_SESSION* resume : {static_cast<WOLFSSL_SESSION*>(nullptr), ticket}) {
      auto p = std::make_unique<Pair>();
      p->client_ctx.reset(testing::NewTestClientCtx(method(), TestPki::Shared().ca_pem()));
      p->client.reset(wolfSSL_new(p->client_ctx.get()));
      wolfSSL_UseSNI(p->client.get(), WOLFSSL_SNI_HOST_NAME, "name.test", 9);
      wolfSSL_UseSessionTicket(p->client.get());
      if (resume != nullptr) wolfSSL_set_session(p->client.get(), resume);
      auto locks_of = [](auto&& call) {
        Recording r;
        call();
        return g_locked;
      };
      std::vector<const void*> on_new = locks_of([&] { p->server.reset(shard->NewSession()); });
      p->link.Attach(p->client.get(), p->server.get());
      bool done = false;
      std::vector<const void*> on_handshake;
      for (int i = 0; i < 20 && !done; ++i) {
        wolfSSL_connect(p->client.get());
        if (i == 0) NoteHello(*p);
        auto some = locks_of([&] { done = wolfSSL_accept(p->server.get()) == WOLFSSL_SUCCESS; });
        on_handshake.insert(on_handshake.end(), some.begin(), some.end());
      }
      ASSERT_TRUE(done);
      EXPECT_EQ(wolfSSL_session_reused(p->server.get()), resume != nullptr ? 1 : 0);
      char buf[8];
      auto on_io = locks_of([&] {
        wolfSSL_write(p->server.get(), "ping", 4);
        wolfSSL_read(p->server.get(), buf, sizeof(buf));  // WANT_READ
      });
      wolfSSL_read(p->client.get(), buf, sizeof(buf));
      auto on_free = locks_of([&] { p->server.reset(); });
      for (const void* m : on_handshake) {
        EXPECT_TRUE(m == name_ctx || m == default_ctx) << "a handshake took a foreign lock";
      }
      EXPECT_TRUE(on_io.empty());
      EXPECT_LE(std::count(on_new.begin(), on_new.end(), global), 1);
      for (const void* m : on_new) EXPECT_TRUE(m == default_ctx || (global && m == global));
      if (global != nullptr) {
        EXPECT_EQ(std::count(on_free.begin(), on_free.end(), global), 0);
      }
      printf(
          "%s %s: wolfSSL_new %zu locks (%ld of the global session cache), handshake %zu, "
          "I/O %zu, free %zu; all others are CTX reference counts or the session's own\n",
          wolfSSL_get_version(p->client.get()), resume ? "resumed" : "full", on_new.size(),
          static_cast<long>(std::count(on_new.begin(), on_new.end(), global)), on_handshake.size(),
          on_io.size(), on_free.size());
    }
    wolfSSL_SESSION_free(ticket);
  }
}

}  // namespace
}  // namespace ringproxy
