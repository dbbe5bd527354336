// Session-ticket keys shared by every shard (and, with a key file, by several
// processes) without any messaging: each shard derives the same per-epoch key from one
// master secret, so a ticket issued on one shard resumes on any other.
//
//   epoch      = floor(now / ticket_key_rotation_s)       (wall clock, seconds)
//   key(e)     = HKDF-SHA256(ikm = master, salt = "ringproxy ticket v1",
//                            info = "key" || be64(e))      32 bytes, AES-256-GCM
//   key id     = HKDF-SHA256(same ikm and salt, info = "id")  8 bytes
//   key_name   = key id || be64(epoch)   (wolfSSL's 16-byte ticket key_name)
//   iv         = 12 random bytes || 00 00 00 03           nonce = the first 12
//   aad        = key_name || be64(digest) || be64(scope)
//                digest = 64 bits of SHA-256 of the client's server name, normalised
//                         (lower case, no trailing dot; "" when none or invalid)
//                scope  = 64 bits of SHA-256 of the listener's certificate settings
//                         and ALPN list (TicketScope::Of)
//   ciphertext = AES-256-GCM(key(epoch), nonce, aad, wolfSSL's ticket)
//   mac        = GCM tag (16 bytes) || 16 zero bytes
//
// Decrypting accepts the current epoch and the previous one. With the previous one a
// TLS 1.2 handshake is asked for a fresh ticket (WOLFSSL_TICKET_RET_CREATE) — but
// wolfSSL 5.5.4 drops that answer: DoDecryptTicket returns 0 for both OK and CREATE, so
// DoClientTicket never sees CREATE and no new ticket is sent (internal.c; fixed in
// later wolfSSL). A TLS 1.2 client therefore keeps its ticket until it is two epochs
// old, then gets one full handshake and a new ticket. TLS 1.3 issues a new ticket on
// every resumption anyway, and 5.5.4 resumes a TLS 1.3 PSK only on RET_OK
// (tls13.c DoPreSharedKeys), so TLS 1.3 is always answered OK. Any other epoch,
// another master's key id or a bad tag gives WOLFSSL_TICKET_RET_REJECT: the handshake
// falls back to a full one. So a ticket lives between one and two rotation periods;
// wolfSSL's own age check (the WOLFSSL_CTX timeout) is set to two periods so that ours
// is the one that decides.
// A ticket therefore resumes only under the server name it was issued for (RFC 6066
// §3): another name fails the tag and gets a full handshake with that name's certificate.
// TLS 1.2 decrypts the ticket while wolfSSL parses the ClientHello's extensions, before
// the name when the client sends its ticket first (as a wolfSSL client does), so the name
// comes from our own read of the ClientHello (TlsServerShardContext::NoteClientHello).
// Without that read (a ClientHello split over several reads) a ticket read before the
// name is checked once the name is parsed, and a mismatch ends the handshake
// (illegal_parameter). Tickets of formats 1 and 2 (no name, or no scope, in the aad)
// are refused.
// The scope (a digest of certificate paths, not contents) keeps a ticket to the
// listeners whose certificates and ALPN are configured as those of the one that issued it: a ticket
// from an HTTPS listener does not resume on an IMAPS listener (or one with other certificates),
// where a full handshake would have shown another certificate, or agreed to another protocol, for
// that name. Processes sharing a key file should have synchronised clocks: a process whose clock is
// in the next epoch issues tickets the others refuse for up to the skew.
//
// Random 96-bit nonces: NIST SP 800-38D allows 2^32 tickets per key, i.e. per rotation
// period across all processes sharing the secret; 3600 s at 100k handshakes/s is 2^28.
//
// Key file: exactly 48 raw bytes, or 96 hexadecimal digits (optionally followed by a
// newline). Generate one with `head -c 48 /dev/urandom > ticket.key`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tls/settings.h"

struct WOLFSSL;

namespace ringproxy {

class TicketKeys;

// What a listener's contexts give the ticket callback (wolfSSL_CTX_set_TicketEncCtx).
struct TicketScope {
  const TicketKeys* keys = nullptr;  // null: tickets off, none issued or accepted
  uint64_t scope = 0;
  // The scope of a listener's settings: its certificate files and directory, strict
  // SNI and ALPN list.
  static uint64_t Of(const TlsServerSettings& settings);
};

class TicketKeys {
 public:
  static constexpr size_t kMasterSecretBytes = 48;
  // Seconds since the Unix epoch. Tests inject a fake; it is called from every shard.
  using Clock = int64_t (*)();

  // Reads the key file (or draws a random master secret) and checks the settings.
  static absl::StatusOr<std::shared_ptr<const TicketKeys>> Create(const TlsGlobalSettings& settings,
                                                                  Clock clock = nullptr);
  // From a given secret (tests, benchmarks).
  static std::shared_ptr<const TicketKeys> FromSecret(const uint8_t (&master)[kMasterSecretBytes],
                                                      uint32_t rotation_s, Clock clock = nullptr);
  ~TicketKeys();

  uint32_t rotation_s() const { return rotation_s_; }
  // Derived from the same master secret (compared by key id).
  bool SameSecret(const TicketKeys& o) const { return memcmp(key_id_, o.key_id_, 8) == 0; }
  uint64_t CurrentEpoch() const;

  // wolfSSL's SessionTicketEncCb; `ctx` is a TicketScope (wolfSSL_CTX_set_TicketEncCtx).
  // Runs on the shard's thread during a handshake; no lock, no allocation (each thread
  // keeps its expanded AES keys for the last two epochs).
  static int TicketCallback(WOLFSSL* ssl, unsigned char key_name[16], unsigned char iv[16],
                            unsigned char mac[32], int encrypt, unsigned char* ticket, int in_bytes,
                            int* out_bytes, void* ctx);

 private:
  TicketKeys(const uint8_t* master, uint32_t rotation_s, Clock clock);
  // Derives the 32-byte key of `epoch` into `key`.
  bool DeriveKey(uint64_t epoch, uint8_t key[32]) const;

  uint8_t master_[kMasterSecretBytes];
  uint8_t key_id_[8];
  uint32_t rotation_s_;
  Clock clock_;
  uint64_t generation_;  // unique per object: tells per-thread caches apart
  friend struct TicketKeyCache;
};

// The process-wide keys: called once at start (control thread, before any shard
// starts), from the [tls] settings. A second call fails: changing the ticket key
// settings takes a restart (like [runtime] sizing).
absl::Status InitTicketKeys(const TlsGlobalSettings& settings);
// The keys InitTicketKeys made; null before. A WOLFSSL_CTX holds its own reference
// (ServerMaterial), so one that outlives its config generation never points at freed
// keys.
std::shared_ptr<const TicketKeys> ProcessTicketKeys();
// Undoes the InitTicketKeys of a config that was then rejected (a reload that failed),
// so that the next config's settings apply. Contexts built meanwhile keep their own
// reference to the keys.
void ForgetTicketKeys();

}  // namespace ringproxy
