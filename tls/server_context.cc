#include "tls/server_context.h"

#include "tls/rsa_offload.h"

// options.h first: it carries the build's feature macros and struct layout choices.
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/deadline.h"
#include "core/log.h"
#include "core/status_util.h"
#include "tls/cert_dir.h"
#include "tls/client_hello.h"
#include "tls/context_setup.h"
#include "tls/server_name.h"
#include "tls/ticket_keys.h"

namespace ringproxy {

namespace tls {

// What TlsServerContext holds besides its settings.
struct ServerMaterial {
  CertDirIndex names;
  bool has_default = false;  // false: strict SNI without a default (placeholder pair)
  PemPair default_primary;
  PemPair default_rsa;  // certificate empty when there is none
  std::shared_ptr<const TicketKeys> keys;
  std::string alpn_list;  // comma-separated, for wolfSSL_UseALPN in strict ALPN mode
};

// wolfSSL's C callbacks; `arg` is the TlsServerShardContext.
struct ServerCallbacks {
  static int OnServerName(WOLFSSL* ssl, int* alert, void* arg) {
    return static_cast<TlsServerShardContext*>(arg)->SelectCertificate(ssl, alert);
  }
  // The backstop for a TLS 1.2 ClientHello without extensions, which never reaches the
  // servername callback: 1 = go on, 0 = refuse (wolfSSL sends internal_error).
  static int OnCertificate(WOLFSSL* ssl, void* arg);
  static int OnAlpn(WOLFSSL* ssl, const unsigned char** out, unsigned char* out_bytes,
                    const unsigned char* in, unsigned int in_bytes, void* arg);
};

}  // namespace tls

namespace {

constexpr uint32_t kNoSlot = UINT32_MAX;
// Bits of the session's ex_data word: the low 16 are a packed ClientHelloInfo.
constexpr uintptr_t kDecided = uintptr_t{1} << 16;

constexpr uintptr_t kNameNoted = uintptr_t{1} << 17;       // the name slot: NoteClientHello's
constexpr uintptr_t kTicketAccepted = uintptr_t{1} << 18;  // the name slot: a ticket's name

// Two ex_data slots for every server session (the word above; a name digest), allocated
// once. wolfSSL's allocator starts at 0, the slot wolfSSL_set_app_data uses; we skip it.
struct ExIndexes {
  int word;
  int name;
};
const ExIndexes& ExIndex2() {
  static const ExIndexes indexes = [] {
    auto next = [] { return wolfSSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr); };
    int word = next();
    if (word == 0) word = next();
    return ExIndexes{word, next()};
  }();
  return indexes;
}
int ExIndex() { return ExIndex2().word; }

uint64_t NameSlot(WOLFSSL* ssl) {
  return reinterpret_cast<uintptr_t>(wolfSSL_get_ex_data(ssl, ExIndex2().name));
}
void SetNameSlot(WOLFSSL* ssl, uint64_t digest) {
  wolfSSL_set_ex_data(ssl, ExIndex2().name,
                      reinterpret_cast<void*>(static_cast<uintptr_t>(digest)));
}

// 64 bits of SHA-256 over the normalised name; an absent or invalid name is "".
uint64_t NameDigest(std::string_view raw) {
  tls::HostName host;
  std::string_view name;
  if (!raw.empty() && tls::NormalizeHostName(raw, &host) == tls::HostNameError::kOk) {
    name = host.view();
  }
  uint8_t hash[WC_SHA256_DIGEST_SIZE];
  wc_Sha256Hash(reinterpret_cast<const byte*>(name.data()), static_cast<word32>(name.size()), hash);
  uint64_t digest;
  memcpy(&digest, hash, sizeof(digest));
  return digest;
}

// The name wolfSSL has parsed; nullopt before it has (or when there is none).
std::optional<uint64_t> ParsedNameDigest(WOLFSSL* ssl) {
  const char* sni = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
  if (sni == nullptr) return std::nullopt;
  return NameDigest(sni);
}

uintptr_t ExWord(WOLFSSL* ssl) {
  return reinterpret_cast<uintptr_t>(wolfSSL_get_ex_data(ssl, ExIndex()));
}

void SetExWord(WOLFSSL* ssl, uintptr_t word) {
  wolfSSL_set_ex_data(ssl, ExIndex(), reinterpret_cast<void*>(word));
}

// Reads the pair and loads it into a scratch CTX: a broken default is a start (or
// reload) error naming the file, not a failure of the first handshake.
absl::StatusOr<tls::PemPair> ReadAndCheckPair(const std::string& certificate,
                                              const std::string& key, tls::KeyInfo* info) {
  absl::StatusOr<tls::PemPair> pair = tls::ReadPemPair(certificate, key);
  if (!pair.ok()) return pair.status();
  WOLFSSL_CTX* ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
  if (ctx == nullptr) return absl::ResourceExhaustedError("wolfSSL_CTX_new failed");
  absl::Status status = tls::LoadPair(ctx, *pair, info);
  wolfSSL_CTX_free(ctx);
  if (!status.ok()) return status;
  return pair;
}

// A name with two pairs: the first must be ECDSA and the second RSA.
absl::Status CheckDualKinds(const tls::KeyInfo& primary, const tls::KeyInfo& rsa,
                            const std::string& primary_path, const std::string& rsa_path) {
  if (primary.kind != tls::KeyKind::kEcdsa) {
    return absl::InvalidArgumentError(
        absl::StrCat("key '", primary_path, "': must be ECDSA when an RSA pair is also given"));
  }
  if (rsa.kind != tls::KeyKind::kRsa) {
    return absl::InvalidArgumentError(absl::StrCat("key '", rsa_path, "': not an RSA key"));
  }
  return absl::OkStatus();
}

absl::Status LoadDefault(const TlsServerSettings& settings, tls::ServerMaterial* m) {
  if (settings.certificate.empty() != settings.key.empty()) {
    return absl::InvalidArgumentError("certificate and key must be given together");
  }
  if (settings.certificate_rsa.empty() != settings.key_rsa.empty()) {
    return absl::InvalidArgumentError("certificate_rsa and key_rsa must be given together");
  }
  if (settings.certificate.empty()) {
    if (!settings.certificate_rsa.empty()) {
      return absl::InvalidArgumentError("certificate_rsa needs certificate (an ECDSA pair)");
    }
    if (!settings.strict_sni) {
      return absl::InvalidArgumentError(
          "a default pair (certificate + key) is required unless strict_sni is on");
    }
    absl::StatusOr<tls::PemPair> placeholder = tls::MakePlaceholderPair();
    if (!placeholder.ok()) return placeholder.status();
    m->default_primary = *std::move(placeholder);
    return absl::OkStatus();
  }
  tls::KeyInfo primary, rsa;
  absl::StatusOr<tls::PemPair> pair =
      ReadAndCheckPair(settings.certificate, settings.key, &primary);
  if (!pair.ok()) return pair.status();
  m->default_primary = *std::move(pair);
  m->has_default = true;
  if (settings.certificate_rsa.empty()) return absl::OkStatus();
  pair = ReadAndCheckPair(settings.certificate_rsa, settings.key_rsa, &rsa);
  if (!pair.ok()) return pair.status();
  m->default_rsa = *std::move(pair);
  return CheckDualKinds(primary, rsa, settings.key, settings.key_rsa);
}

}  // namespace

// ---- TlsServerContext --------------------------------------------------------------

TlsServerContext::TlsServerContext() : material_(std::make_unique<tls::ServerMaterial>()) {}
TlsServerContext::~TlsServerContext() = default;

size_t TlsServerContext::name_count() const { return material_->names.entries.size(); }

absl::StatusOr<std::shared_ptr<const TlsServerContext>> TlsServerContext::Create(
    const TlsServerSettings& settings) {
  return Create(settings, ProcessTicketKeys());
}

absl::StatusOr<std::shared_ptr<const TlsServerContext>> TlsServerContext::Create(
    const TlsServerSettings& settings, std::shared_ptr<const TicketKeys> keys) {
  std::shared_ptr<TlsServerContext> context(new TlsServerContext());
  context->settings_ = settings;
  tls::ServerMaterial* m = context->material_.get();
  if (settings.ctx_cache_size == 0) {
    return absl::InvalidArgumentError("ctx_cache_size must be at least 1");
  }
  if (settings.session_tickets && keys == nullptr) {
    return absl::FailedPreconditionError(
        "session tickets need the ticket keys: call InitTicketKeys at start");
  }
  m->keys = std::move(keys);
  if (absl::Status s = tls::JoinAlpn(settings.alpn, &m->alpn_list); !s.ok()) return s;
  if (!settings.certificate_dir.empty()) {
    absl::StatusOr<tls::CertDirIndex> index = tls::IndexCertDirectory(settings.certificate_dir);
    if (!index.ok()) return index.status();
    m->names = *std::move(index);
  }
  if (absl::Status s = LoadDefault(settings, m); !s.ok()) return s;
  return std::shared_ptr<const TlsServerContext>(std::move(context));
}

// ---- TlsServerShardContext ---------------------------------------------------------

struct TlsServerShardContext::NameContexts {
  WOLFSSL_CTX* primary = nullptr;
  WOLFSSL_CTX* rsa = nullptr;  // second pair, when the name has one
  tls::EcdsaCurve curve = tls::EcdsaCurve::kOther;
  bool failed = false;  // the pair could not be loaded (logged once per build)
  int64_t failed_at_ns = 0;

  void Release() {
    // Drops the cache's reference; sessions on these CTXs keep theirs.
    if (primary != nullptr) wolfSSL_CTX_free(primary);
    if (rsa != nullptr) wolfSSL_CTX_free(rsa);
    *this = NameContexts();
  }
};

struct TlsServerShardContext::Slot {
  uint32_t entry = 0;
  uint32_t prev = kNoSlot;
  uint32_t next = kNoSlot;
  NameContexts contexts;
};

TlsServerShardContext::TlsServerShardContext(std::shared_ptr<const TlsServerContext> context)
    : context_(std::move(context)),
      material_(*context_->material_),
      head_(kNoSlot),
      tail_(kNoSlot) {
  slots_.reserve(context_->settings_.ctx_cache_size);
  slot_of_entry_.assign(material_.names.entries.size(), kNoSlot);
  ticket_scope_.keys = material_.keys.get();
  ticket_scope_.scope = TicketScope::Of(context_->settings_);
}

TlsServerShardContext::~TlsServerShardContext() {
  for (Slot& slot : slots_) slot.contexts.Release();
  if (default_ != nullptr) default_->Release();
}

absl::StatusOr<std::unique_ptr<TlsServerShardContext>> TlsServerShardContext::Create(
    std::shared_ptr<const TlsServerContext> context) {
  if (context == nullptr) return absl::InvalidArgumentError("no TLS server context");
  std::unique_ptr<TlsServerShardContext> shard(new TlsServerShardContext(std::move(context)));
  if (absl::Status s = shard->BuildDefault(); !s.ok()) return s;
  (void)ExIndex();  // allocated here, on the control path, not by a first handshake
  return shard;
}

absl::StatusOr<WOLFSSL_CTX*> TlsServerShardContext::NewCtx(const tls::PemPair& pair,
                                                           tls::KeyInfo* key) {
  WOLFSSL_CTX* ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
  if (ctx == nullptr) return absl::ResourceExhaustedError("wolfSSL_CTX_new failed");
  absl::Status status = tls::ApplyPolicy(ctx, pair.certificate_path);
  if (status.ok()) status = tls::LoadPair(ctx, pair, key);
  if (!status.ok()) {
    wolfSSL_CTX_free(ctx);
    return status;
  }
  if (key->kind == tls::KeyKind::kRsa) tls::InstallRsaOffload(ctx);
  wolfSSL_CTX_set_servername_callback(ctx, tls::ServerCallbacks::OnServerName);
  wolfSSL_CTX_set_servername_arg(ctx, this);
  wolfSSL_CTX_set_cert_cb(ctx, tls::ServerCallbacks::OnCertificate, this);
  if (!context_->settings_.alpn.empty()) {
    wolfSSL_CTX_set_alpn_select_cb(ctx, tls::ServerCallbacks::OnAlpn, this);
  }
  // Our callback even with tickets off: wolfSSL's default one keeps a key and a mutex in
  // every CTX; ours, given no keys, refuses every ticket.
  bool tickets = context_->settings_.session_tickets && material_.keys != nullptr;
  wolfSSL_CTX_set_TicketEncCb(ctx, TicketKeys::TicketCallback);
  wolfSSL_CTX_set_TicketEncCtx(ctx, tickets ? &ticket_scope_ : nullptr);
  if (tickets) {
    uint32_t rotation = material_.keys->rotation_s();
    wolfSSL_CTX_set_TicketHint(ctx, static_cast<int>(rotation));
    wolfSSL_CTX_set_timeout(ctx, 2 * rotation);
  } else {
    wolfSSL_CTX_NoTicketTLSv12(ctx);
    wolfSSL_CTX_no_ticket_TLSv13(ctx);
  }
  return ctx;
}

absl::Status TlsServerShardContext::BuildDefault() {
  default_ = std::make_unique<NameContexts>();
  tls::KeyInfo key;
  absl::StatusOr<WOLFSSL_CTX*> ctx = NewCtx(material_.default_primary, &key);
  if (!ctx.ok()) return ctx.status();
  default_->primary = *ctx;
  default_->curve = key.curve;
  if (material_.default_rsa.certificate.empty()) return absl::OkStatus();
  ctx = NewCtx(material_.default_rsa, &key);
  if (!ctx.ok()) return ctx.status();
  default_->rsa = *ctx;
  return absl::OkStatus();
}

void TlsServerShardContext::BuildName(uint32_t entry, NameContexts* out) {
  const tls::CertDirEntry& e = material_.names.entries[entry];
  tls::KeyInfo primary_key, rsa_key;
  absl::Status status;
  absl::StatusOr<tls::PemPair> pair = tls::ReadPemPair(e.primary.certificate, e.primary.key);
  absl::StatusOr<WOLFSSL_CTX*> ctx = pair.ok() ? NewCtx(*pair, &primary_key) : pair.status();
  if (ctx.ok()) {
    out->primary = *ctx;
    out->curve = primary_key.curve;
  }
  status = ctx.status();
  if (status.ok() && !e.rsa.empty()) {
    pair = tls::ReadPemPair(e.rsa.certificate, e.rsa.key);
    ctx = pair.ok() ? NewCtx(*pair, &rsa_key) : pair.status();
    if (ctx.ok()) out->rsa = *ctx;
    status = ctx.status();
    if (status.ok()) status = CheckDualKinds(primary_key, rsa_key, e.primary.key, e.rsa.key);
  }
  ++stats_.cache_builds;
  if (status.ok()) return;
  // Retried after retry_failed_name_ms (or once the slot is evicted): a broken pair must
  // not cost two file reads and a parse on every handshake, and a passing failure (no
  // descriptor left under load, a pair read in the middle of its renewal) must not
  // last until the next reload.
  ++stats_.cache_build_failures;
  RP_LOG(kWarn, "tls: certificate for {} unusable, serving {}: {}", e.name,
         material_.has_default ? "the default" : "nothing", MessageOf(status));
  out->Release();
  out->failed = true;
  out->failed_at_ns = MonotonicNowNs();
}

void TlsServerShardContext::Unlink(uint32_t slot) {
  Slot& s = slots_[slot];
  if (s.prev != kNoSlot) slots_[s.prev].next = s.next;
  if (s.next != kNoSlot) slots_[s.next].prev = s.prev;
  if (head_ == slot) head_ = s.next;
  if (tail_ == slot) tail_ = s.prev;
  s.prev = s.next = kNoSlot;
}

void TlsServerShardContext::LinkAtHead(uint32_t slot) {
  Slot& s = slots_[slot];
  s.prev = kNoSlot;
  s.next = head_;
  if (head_ != kNoSlot) slots_[head_].prev = slot;
  head_ = slot;
  if (tail_ == kNoSlot) tail_ = slot;
}

uint32_t TlsServerShardContext::TakeSlot() {
  if (slots_.size() < slots_.capacity()) {
    slots_.emplace_back();  // within the reserved capacity: no reallocation
    ++live_slots_;
    return static_cast<uint32_t>(slots_.size() - 1);
  }
  uint32_t victim = tail_;
  Unlink(victim);
  slot_of_entry_[slots_[victim].entry] = kNoSlot;
  slots_[victim].contexts.Release();
  ++stats_.cache_evictions;
  return victim;
}

const TlsServerShardContext::NameContexts* TlsServerShardContext::Lookup(uint32_t entry) {
  uint32_t slot = slot_of_entry_[entry];
  if (slot != kNoSlot) {
    NameContexts& contexts = slots_[slot].contexts;
    if (contexts.failed && MonotonicNowNs() - contexts.failed_at_ns >=
                               context_->settings_.retry_failed_name_ms * 1'000'000) {
      contexts.Release();
      BuildName(entry, &contexts);
    } else {
      ++stats_.cache_hits;
    }
    if (head_ != slot) {
      Unlink(slot);
      LinkAtHead(slot);
    }
    return &contexts;
  }
  slot = TakeSlot();
  slots_[slot].entry = entry;
  BuildName(entry, &slots_[slot].contexts);
  slot_of_entry_[entry] = slot;
  LinkAtHead(slot);
  return &slots_[slot].contexts;
}

int TlsServerShardContext::SelectCertificate(WOLFSSL* ssl, int* alert) {
  uintptr_t word = ExWord(ssl);
  SetExWord(ssl, word | kDecided);
  if ((word & kTicketAccepted) != 0 &&
      ParsedNameDigest(ssl).value_or(NameDigest("")) != NameSlot(ssl)) {
    // A TLS 1.2 ticket read before the name, for another name than the one now parsed.
    ++stats_.refused;
    *alert = illegal_parameter;
    return fatal_return;
  }
  const char* sni = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
  tls::HostName host;
  std::string_view name;
  // wolfSSL keeps the name as a C string: one sent with a NUL in it ("known.test\0x")
  // reaches us cut short. Our own read of the hello saw it whole; where the two differ,
  // the name sent was not this one.
  const bool cut = (word & (kNameNoted | kTicketAccepted)) == kNameNoted &&
                   NameSlot(ssl) != NameDigest(sni == nullptr ? "" : sni);
  // An invalid name is treated like an unknown one.
  if (sni != nullptr && !cut && tls::NormalizeHostName(sni, &host) == tls::HostNameError::kOk) {
    name = host.view();
  }
  // Strict mode keeps a default pair only for a known name whose own pair failed.
  tls::ServerNameIndex::Selection pick =
      material_.names.names.Select(name, material_.has_default && !context_->settings().strict_sni);
  const NameContexts* contexts = nullptr;
  switch (pick.kind) {
    case tls::ServerNameIndex::Kind::kExact:
    case tls::ServerNameIndex::Kind::kWildcard:
      contexts = Lookup(pick.value);
      if (contexts->failed) contexts = material_.has_default ? default_.get() : nullptr;
      if (contexts == nullptr) {
        *alert = internal_error;
        return fatal_return;
      }
      break;
    case tls::ServerNameIndex::Kind::kDefault:
      ++stats_.default_served;
      contexts = default_.get();
      break;
    case tls::ServerNameIndex::Kind::kNone:
      ++stats_.refused;
      *alert = unrecognized_name;
      return fatal_return;
  }
  WOLFSSL_CTX* ctx = contexts->primary;
  if (contexts->rsa != nullptr &&
      tls::ChooseCertificate(tls::ClientHelloInfo::Unpack(static_cast<uint32_t>(word & 0xffff)),
                             contexts->curve) == tls::CertChoice::kRsa) {
    ctx = contexts->rsa;
    ++stats_.rsa_served;
  }
  if (wolfSSL_set_SSL_CTX(ssl, ctx) == nullptr) {
    *alert = internal_error;
    return fatal_return;
  }
  return 0;
}

int tls::ServerCallbacks::OnCertificate(WOLFSSL* ssl, void* arg) {
  if (ExWord(ssl) & kDecided) return 1;
  int alert = 0;
  return static_cast<TlsServerShardContext*>(arg)->SelectCertificate(ssl, &alert) == 0 ? 1 : 0;
}

// Our order of preference, the first of ours the client offers. No match: no ALPN
// (wolfSSL then looks for a list set by wolfSSL_UseALPN, which exists only in strict
// mode and fails the handshake).
int tls::ServerCallbacks::OnAlpn(WOLFSSL* /*ssl*/, const unsigned char** out,
                                 unsigned char* out_bytes, const unsigned char* in,
                                 unsigned int in_bytes, void* arg) {
  const auto* shard = static_cast<const TlsServerShardContext*>(arg);
  for (const std::string& ours : shard->context_->settings().alpn) {
    for (unsigned int i = 0; i < in_bytes;) {
      unsigned int length = in[i];
      if (length == 0 || i + 1 + length > in_bytes) break;
      if (length == ours.size() &&
          std::string_view(reinterpret_cast<const char*>(in + i + 1), length) == ours) {
        *out = in + i + 1;
        *out_bytes = static_cast<unsigned char>(length);
        return 0;  // SSL_TLSEXT_ERR_OK
      }
      i += 1 + length;
    }
  }
  return 3;  // SSL_TLSEXT_ERR_NOACK
}

WOLFSSL* TlsServerShardContext::NewSession() {
  WOLFSSL* ssl = wolfSSL_new(default_->primary);
  if (ssl == nullptr) {
    RP_LOG(kWarn, "tls: wolfSSL_new failed (out of memory?)");
    return nullptr;
  }
  wolfSSL_SetHsDoneCb(ssl, tls::TrimAfterHandshake, nullptr);
  if (context_->settings_.alpn_strict && !material_.alpn_list.empty()) {
    // Strict ALPN is the one case that costs an allocation per session: wolfSSL has no
    // CTX-level list, and only a list with FAILED_ON_MISMATCH makes it refuse.
    if (wolfSSL_UseALPN(ssl, const_cast<char*>(material_.alpn_list.data()),
                        static_cast<unsigned int>(material_.alpn_list.size()),
                        WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS) {
      RP_LOG(kWarn, "tls: wolfSSL_UseALPN failed (out of memory?)");
      wolfSSL_free(ssl);
      return nullptr;
    }
  }
  ++stats_.sessions;
  return ssl;
}

void TlsServerShardContext::NoteClientHello(WOLFSSL* ssl, const uint8_t* data, size_t size) {
  uintptr_t word = ExWord(ssl) & ~uintptr_t{0xffff};
  tls::ClientHelloInfo info = tls::ScanClientHello(data, size);
  if (info.complete && (word & kTicketAccepted) == 0) {
    SetNameSlot(ssl, NameDigest(info.has_server_name
                                    ? std::string_view(info.server_name, info.server_name_bytes)
                                    : std::string_view()));
    word |= kNameNoted;
  }
  SetExWord(ssl, word | info.Pack());
}

std::optional<uint64_t> TlsServerShardContext::TicketNameDigest(WOLFSSL* ssl) {
  std::optional<uint64_t> parsed = ParsedNameDigest(ssl);
  if ((ExWord(ssl) & kNameNoted) == 0) return parsed.value_or(NameDigest(""));
  uint64_t noted = NameSlot(ssl);
  if (parsed.has_value() && *parsed != noted) return std::nullopt;
  return noted;
}

void TlsServerShardContext::NoteTicketAccepted(WOLFSSL* ssl, uint64_t digest) {
  SetNameSlot(ssl, digest);
  SetExWord(ssl, ExWord(ssl) | kTicketAccepted);
}

}  // namespace ringproxy
