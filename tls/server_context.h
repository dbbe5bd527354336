// Downstream TLS: ready-to-use server sessions (WOLFSSL*) with the product's policy
// (tls/context_setup.h), a certificate per name (SNI), ECDSA and RSA certificates on one
// name, ALPN and session tickets shared by every shard (tls/ticket_keys.h). No socket
// I/O: the caller (the TLS stream) sets the session's I/O callbacks and drives
// wolfSSL_accept / read / write / shutdown.
//
// Two objects:
//  * TlsServerContext: immutable, built on the control thread at config load (and at
//    reload: a new one from the possibly changed directory). Settings, the directory
//    index (tls/cert_dir.h), the default pair read and checked, the ticket keys. Safe to
//    read from every thread.
//  * TlsServerShardContext: one per shard, used only by its shard's thread. Owns the
//    default WOLFSSL_CTX (two with an RSA default) and an LRU cache of per-name
//    WOLFSSL_CTX objects built on first use (ctx_cache_size per shard).
//
// Certificate selection runs in wolfSSL's servername callback, which wolfSSL calls for
// every ClientHello with extensions, with or without SNI, before it picks the cipher
// suite, the signature scheme or the certificate (TLS 1.2 and 1.3). It normalises the
// name, looks it up (exact, wildcard, default: tls/server_name.h), builds or finds the
// name's CTX and moves the session onto it with wolfSSL_set_SSL_CTX. That call takes a
// reference on the new CTX and drops the one on the old (ssl.c wolfSSL_set_SSL_CTX,
// SSL_CTX_RefCount), and wolfSSL_free drops the session's; so a CTX evicted from the
// cache, or owned by a shard context of an older config generation, is freed only when
// its last session is. Strict mode refuses an unknown name and a missing one with a
// fatal unrecognized_name alert. A TLS 1.2 ClientHello without any extension never
// reaches the servername callback; the certificate callback (run before the suite is
// chosen, internal.c DoClientHello) refuses it in strict mode (internal_error alert).
//
// For a name with two pairs the choice needs the client's suites and signature schemes,
// which wolfSSL does not expose before the certificate is fixed (tls/client_hello.h):
// the stream passes the first bytes it received to NoteClientHello before the first
// wolfSSL_accept. Without that the ECDSA pair is served.
//
// Lifetime: keep a TlsServerShardContext alive until every session it created has
// finished its handshake or been freed (the callbacks it installs point at it; a finished
// session needs nothing from it). In ringproxy the shard's config snapshot owns it and
// every session holds the snapshot it began with.
//
// Hot path (NewSession, the callbacks on a cache hit): no allocation beyond wolfSSL's
// own, no lock beyond wolfSSL's per-CTX reference-count mutex, which only this shard's
// thread takes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tls/settings.h"
#include "tls/ticket_keys.h"

struct WOLFSSL;
struct WOLFSSL_CTX;

namespace ringproxy {

class TicketKeys;
namespace tls {
struct ServerMaterial;
struct ServerCallbacks;
struct PemPair;
struct KeyInfo;
}  // namespace tls

class TlsServerContext {
 public:
  // Uses the process-wide ticket keys (InitTicketKeys must have run when tickets are
  // on). Errors name the file and say what is wrong.
  static absl::StatusOr<std::shared_ptr<const TlsServerContext>> Create(
      const TlsServerSettings& settings);
  // With explicit ticket keys (tests, benchmarks). `keys` may be null only when
  // settings.session_tickets is off.
  static absl::StatusOr<std::shared_ptr<const TlsServerContext>> Create(
      const TlsServerSettings& settings, std::shared_ptr<const TicketKeys> keys);
  ~TlsServerContext();

  const TlsServerSettings& settings() const { return settings_; }
  // Names indexed from certificate_dir.
  size_t name_count() const;

 private:
  friend class TlsServerShardContext;
  TlsServerContext();
  TlsServerSettings settings_;
  std::unique_ptr<tls::ServerMaterial> material_;
};

class TlsServerShardContext {
 public:
  // Builds this shard's default CTX(s). Call on (or before handing it to) the shard.
  static absl::StatusOr<std::unique_ptr<TlsServerShardContext>> Create(
      std::shared_ptr<const TlsServerContext> context);
  ~TlsServerShardContext();
  TlsServerShardContext(const TlsServerShardContext&) = delete;
  TlsServerShardContext& operator=(const TlsServerShardContext&) = delete;

  // A server session on the default CTX with the SNI, ALPN and ticket hooks installed;
  // the caller sets its I/O callbacks and frees it with wolfSSL_free. nullptr when
  // wolfSSL cannot make one (out of memory), with a log line.
  WOLFSSL* NewSession();

  // Optional, before the first wolfSSL_accept: the bytes received so far (the start of
  // the ClientHello). Read only during this call; decides between a name's ECDSA and
  // RSA pairs. Uses one wolfSSL ex_data slot of the session (never slot 0, which
  // wolfSSL_set_app_data uses).
  static void NoteClientHello(WOLFSSL* ssl, const uint8_t* data, size_t size);

  // Session tickets are bound to the server name the client asks for
  // (tls/ticket_keys.h). The digest of that name (normalised; an absent or invalid name
  // is the empty one): from NoteClientHello's read when it read the whole ClientHello,
  // since TLS 1.2 decrypts a ticket while wolfSSL parses the extensions, maybe before
  // the name; else from wolfSSL. nullopt when the two disagree. A second ex_data slot.
  static std::optional<uint64_t> TicketNameDigest(WOLFSSL* ssl);
  // A ticket was accepted under `digest`: once wolfSSL has parsed the ClientHello, the
  // servername callback refuses the handshake if its name has another digest.
  static void NoteTicketAccepted(WOLFSSL* ssl, uint64_t digest);

  const TlsServerContext& context() const { return *context_; }

  // Counters of this shard (only its thread writes them).
  struct Stats {
    uint64_t sessions = 0;
    uint64_t cache_hits = 0;
    uint64_t cache_builds = 0;
    uint64_t cache_build_failures = 0;
    uint64_t cache_evictions = 0;
    uint64_t default_served = 0;
    uint64_t rsa_served = 0;
    uint64_t refused = 0;  // strict mode: unknown or missing name
  };
  const Stats& stats() const { return stats_; }
  size_t cached_names() const { return live_slots_; }

 private:
  friend struct tls::ServerCallbacks;
  struct NameContexts;
  struct Slot;
  explicit TlsServerShardContext(std::shared_ptr<const TlsServerContext> context);
  absl::Status BuildDefault();
  absl::StatusOr<WOLFSSL_CTX*> NewCtx(const tls::PemPair& pair, tls::KeyInfo* key);
  void BuildName(uint32_t entry, NameContexts* out);
  const NameContexts* Lookup(uint32_t entry);
  uint32_t TakeSlot();
  void LinkAtHead(uint32_t slot);
  void Unlink(uint32_t slot);
  // The servername callback's work: returns 0 or wolfSSL's fatal_return with *alert.
  int SelectCertificate(WOLFSSL* ssl, int* alert);

  std::shared_ptr<const TlsServerContext> context_;
  const tls::ServerMaterial& material_;
  std::unique_ptr<NameContexts> default_;
  // LRU over slots (index links); slot_of_entry_ maps a directory entry to its slot.
  std::vector<Slot> slots_;
  std::vector<uint32_t> slot_of_entry_;
  uint32_t head_;  // most recently used
  uint32_t tail_;  // least recently used
  size_t live_slots_ = 0;
  Stats stats_;
  TicketScope ticket_scope_;  // every CTX's ticket callback context
};

}  // namespace ringproxy
