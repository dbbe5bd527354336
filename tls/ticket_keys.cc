#include "tls/ticket_keys.h"

// options.h first: it carries the build's feature macros and struct layout choices.
#include <fcntl.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/ascii.h"
#include "tls/server_context.h"

namespace ringproxy {

namespace {

constexpr char kSalt[] = "ringproxy ticket v1";
constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
// iv[15]: the layout in the header (1: no name in the aad; 2: no scope)
constexpr uint8_t kFormat = 3;

std::atomic<uint64_t> g_next_generation{1};

int64_t WallClock() { return static_cast<int64_t>(time(nullptr)); }

void PutBe64Into(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}

void PutBe64(uint64_t v, uint8_t* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

uint64_t GetBe64(const uint8_t* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | in[i];
  return v;
}

bool Hkdf(const uint8_t* master, const uint8_t* info, size_t info_bytes, uint8_t* out,
          size_t out_bytes) {
  return wc_HKDF(WC_SHA256, master, TicketKeys::kMasterSecretBytes,
                 reinterpret_cast<const byte*>(kSalt), sizeof(kSalt) - 1, info,
                 static_cast<word32>(info_bytes), out, static_cast<word32>(out_bytes)) == 0;
}

absl::Status ReadKeyFile(const std::string& path, uint8_t* master) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ticket_key_file '", path, "': ", strerror(errno)));
  }
  char buf[256];
  ssize_t n = read(fd, buf, sizeof(buf));
  int read_errno = errno;
  close(fd);
  if (n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ticket_key_file '", path, "': ", strerror(read_errno)));
  }
  size_t size = static_cast<size_t>(n);
  if (size == TicketKeys::kMasterSecretBytes) {
    memcpy(master, buf, size);
    memset(buf, 0, sizeof(buf));
    return absl::OkStatus();
  }
  while (size > 0 && (buf[size - 1] == '\n' || buf[size - 1] == '\r')) --size;
  bool hex = size == 2 * TicketKeys::kMasterSecretBytes;
  for (size_t i = 0; hex && i < size; ++i) hex = HexDigitValue(buf[i]) >= 0;
  if (!hex) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ticket_key_file '", path, "': expected exactly 48 raw bytes or 96 hex digits, found ", n,
        " bytes (make one with: head -c 48 /dev/urandom > FILE)"));
  }
  for (size_t i = 0; i < TicketKeys::kMasterSecretBytes; ++i) {
    master[i] =
        static_cast<uint8_t>(HexDigitValue(buf[2 * i]) << 4 | HexDigitValue(buf[2 * i + 1]));
  }
  memset(buf, 0, sizeof(buf));
  return absl::OkStatus();
}

}  // namespace

// Per-thread expanded keys for the last two epochs used, and a DRBG for nonces. Only
// the thread's own handshakes touch it: no lock.
struct TicketKeyCache {
  struct Slot {
    bool valid = false;
    uint64_t epoch = 0;
    Aes aes;
  };
  uint64_t generation = 0;
  Slot slots[2];
  bool rng_ready = false;
  WC_RNG rng;

  ~TicketKeyCache() {
    for (Slot& s : slots) {
      if (s.valid) wc_AesFree(&s.aes);
    }
    if (rng_ready) wc_FreeRng(&rng);
    memset(static_cast<void*>(this), 0, sizeof(*this));
  }

  // The expanded key of `epoch`, derived on first use in this thread.
  Aes* KeyFor(const TicketKeys& keys, uint64_t epoch) {
    if (generation != keys.generation_) {
      for (Slot& s : slots) {
        if (s.valid) wc_AesFree(&s.aes);
        s.valid = false;
      }
      generation = keys.generation_;
    }
    for (Slot& s : slots) {
      if (s.valid && s.epoch == epoch) return &s.aes;
    }
    // Replace an empty slot, else the older epoch.
    Slot* victim = !slots[0].valid                   ? &slots[0]
                   : !slots[1].valid                 ? &slots[1]
                   : slots[0].epoch < slots[1].epoch ? &slots[0]
                                                     : &slots[1];
    if (victim->valid) wc_AesFree(&victim->aes);
    victim->valid = false;
    uint8_t key[kKeyBytes];
    bool ok = keys.DeriveKey(epoch, key) && wc_AesInit(&victim->aes, nullptr, INVALID_DEVID) == 0 &&
              wc_AesGcmSetKey(&victim->aes, key, sizeof(key)) == 0;
    memset(key, 0, sizeof(key));
    if (!ok) return nullptr;
    victim->valid = true;
    victim->epoch = epoch;
    return &victim->aes;
  }

  bool Nonce(uint8_t* out) {
    if (!rng_ready) {
      if (wc_InitRng(&rng) != 0) return false;
      rng_ready = true;
    }
    return wc_RNG_GenerateBlock(&rng, out, kNonceBytes) == 0;
  }
};

namespace {
thread_local TicketKeyCache t_cache;
}  // namespace

TicketKeys::TicketKeys(const uint8_t* master, uint32_t rotation_s, Clock clock)
    : rotation_s_(rotation_s),
      clock_(clock != nullptr ? clock : WallClock),
      generation_(g_next_generation.fetch_add(1)) {
  memcpy(master_, master, kMasterSecretBytes);
  static const uint8_t kIdInfo[] = {'i', 'd'};
  if (!Hkdf(master_, kIdInfo, sizeof(kIdInfo), key_id_, sizeof(key_id_))) {
    memset(key_id_, 0, sizeof(key_id_));
  }
}

TicketKeys::~TicketKeys() { memset(master_, 0, sizeof(master_)); }

absl::StatusOr<std::shared_ptr<const TicketKeys>> TicketKeys::Create(
    const TlsGlobalSettings& settings, Clock clock) {
  if (settings.ticket_key_rotation_s == 0) {
    return absl::InvalidArgumentError("ticket_key_rotation_s must be at least 1");
  }
  uint8_t master[kMasterSecretBytes];
  if (!settings.ticket_key_file.empty()) {
    if (absl::Status s = ReadKeyFile(settings.ticket_key_file, master); !s.ok()) return s;
  } else {
    WC_RNG rng;
    bool ok = wc_InitRng(&rng) == 0;
    ok = ok && wc_RNG_GenerateBlock(&rng, master, sizeof(master)) == 0;
    wc_FreeRng(&rng);
    if (!ok) return absl::InternalError("ticket keys: the random number generator failed");
  }
  std::shared_ptr<const TicketKeys> keys(
      new TicketKeys(master, settings.ticket_key_rotation_s, clock));
  memset(master, 0, sizeof(master));
  return keys;
}

std::shared_ptr<const TicketKeys> TicketKeys::FromSecret(
    const uint8_t (&master)[kMasterSecretBytes], uint32_t rotation_s, Clock clock) {
  return std::shared_ptr<const TicketKeys>(
      new TicketKeys(master, rotation_s == 0 ? 1 : rotation_s, clock));
}

uint64_t TicketKeys::CurrentEpoch() const {
  int64_t now = clock_();
  return now <= 0 ? 0 : static_cast<uint64_t>(now) / rotation_s_;
}

bool TicketKeys::DeriveKey(uint64_t epoch, uint8_t key[32]) const {
  uint8_t info[3 + 8] = {'k', 'e', 'y'};
  PutBe64(epoch, info + 3);
  return Hkdf(master_, info, sizeof(info), key, kKeyBytes);
}

namespace {

// The authenticated data: the key name, then the digest of the client's server name
// (TlsServerShardContext::TicketNameDigest), so a ticket resumes only under the name it
// was issued for (RFC 6066 §3), then the listener's scope.
constexpr size_t kAadBytes = 16 + 8 + 8;
void TicketAad(const unsigned char key_name[16], uint64_t name_digest, uint64_t scope,
               uint8_t (&aad)[kAadBytes]) {
  memcpy(aad, key_name, 16);
  PutBe64(name_digest, aad + 16);
  PutBe64(scope, aad + 24);
}

}  // namespace

uint64_t TicketScope::Of(const TlsServerSettings& s) {
  // Each field with its length, so that no two lists of fields read the same.
  std::string in;
  auto add = [&in](std::string_view field) {
    PutBe64Into(&in, field.size());
    in.append(field);
  };
  for (const std::string* f :
       {&s.certificate, &s.key, &s.certificate_rsa, &s.key_rsa, &s.certificate_dir}) {
    add(*f);
  }
  add(s.strict_sni ? "strict" : "");
  for (const std::string& p : s.alpn) add(p);
  uint8_t hash[WC_SHA256_DIGEST_SIZE];
  wc_Sha256Hash(reinterpret_cast<const byte*>(in.data()), static_cast<word32>(in.size()), hash);
  return GetBe64(hash);
}

int TicketKeys::TicketCallback(WOLFSSL* ssl, unsigned char key_name[16], unsigned char iv[16],
                               unsigned char mac[32], int encrypt, unsigned char* ticket,
                               int in_bytes, int* out_bytes, void* ctx) {
  const auto* scope = static_cast<const TicketScope*>(ctx);
  const TicketKeys* keys = scope != nullptr ? scope->keys : nullptr;
  // No keys: tickets are off for this listener; never issue, never accept.
  if (keys == nullptr || in_bytes <= 0) {
    return encrypt ? WOLFSSL_TICKET_RET_FATAL : WOLFSSL_TICKET_RET_REJECT;
  }
  uint64_t now = keys->CurrentEpoch();
  if (encrypt) {
    memcpy(key_name, keys->key_id_, 8);
    PutBe64(now, key_name + 8);
    if (!t_cache.Nonce(iv)) return WOLFSSL_TICKET_RET_FATAL;
    iv[12] = iv[13] = iv[14] = 0;
    iv[15] = kFormat;
    Aes* aes = t_cache.KeyFor(*keys, now);
    memset(mac, 0, 32);
    std::optional<uint64_t> name = TlsServerShardContext::TicketNameDigest(ssl);
    if (!name.has_value()) return WOLFSSL_TICKET_RET_FATAL;
    uint8_t aad[kAadBytes];
    TicketAad(key_name, *name, scope->scope, aad);
    if (aes == nullptr || wc_AesGcmEncrypt(aes, ticket, ticket, static_cast<word32>(in_bytes), iv,
                                           kNonceBytes, mac, kTagBytes, aad, kAadBytes) != 0) {
      return WOLFSSL_TICKET_RET_FATAL;
    }
    *out_bytes = in_bytes;
    return WOLFSSL_TICKET_RET_OK;
  }
  // Another master's tickets, other formats and other epochs are refused without
  // touching the AES keys: the client just gets a full handshake.
  static const uint8_t kZeros[16] = {};
  if (memcmp(key_name, keys->key_id_, 8) != 0 || iv[15] != kFormat ||
      memcmp(mac + kTagBytes, kZeros, 16) != 0) {
    return WOLFSSL_TICKET_RET_REJECT;
  }
  uint64_t epoch = GetBe64(key_name + 8);
  if (epoch != now && epoch + 1 != now) return WOLFSSL_TICKET_RET_REJECT;
  Aes* aes = t_cache.KeyFor(*keys, epoch);
  std::optional<uint64_t> name = TlsServerShardContext::TicketNameDigest(ssl);
  if (!name.has_value()) return WOLFSSL_TICKET_RET_REJECT;
  uint8_t aad[kAadBytes];
  TicketAad(key_name, *name, scope->scope, aad);
  if (aes == nullptr || wc_AesGcmDecrypt(aes, ticket, ticket, static_cast<word32>(in_bytes), iv,
                                         kNonceBytes, mac, kTagBytes, aad, kAadBytes) != 0) {
    return WOLFSSL_TICKET_RET_REJECT;
  }
  TlsServerShardContext::NoteTicketAccepted(ssl, *name);
  *out_bytes = in_bytes;
  // Ask for a new TLS 1.2 ticket (5.5.4 ignores it, see the header); TLS 1.3 gets a new
  // ticket anyway and wolfSSL would not resume its PSK on RET_CREATE.
  if (epoch != now && wolfSSL_GetVersion(ssl) != WOLFSSL_TLSV1_3) {
    return WOLFSSL_TICKET_RET_CREATE;
  }
  return WOLFSSL_TICKET_RET_OK;
}

namespace {

struct ProcessKeys {
  std::mutex mu;
  bool set = false;
  TlsGlobalSettings settings;
  std::shared_ptr<const TicketKeys> keys;
};

// Never destroyed: contexts built from these keys may be freed after static
// destructors would have run.
ProcessKeys& Process() {
  static ProcessKeys* p = new ProcessKeys();
  return *p;
}

}  // namespace

absl::Status InitTicketKeys(const TlsGlobalSettings& settings) {
  ProcessKeys& p = Process();
  std::lock_guard<std::mutex> lock(p.mu);
  if (p.set) {
    if (p.settings.ticket_key_rotation_s != settings.ticket_key_rotation_s ||
        p.settings.ticket_key_file != settings.ticket_key_file) {
      return absl::FailedPreconditionError(
          "ticket_key_rotation_s / ticket_key_file changed: restart to apply");
    }
    // The same file, maybe rewritten (an operator replacing a leaked secret): say that
    // the new secret waits for a restart rather than keep the old one silently.
    if (!settings.ticket_key_file.empty()) {
      absl::StatusOr<std::shared_ptr<const TicketKeys>> now = TicketKeys::Create(settings);
      if (!now.ok()) {
        return absl::FailedPreconditionError(absl::StrCat("ticket_key_file cannot be read again (",
                                                          now.status().message(),
                                                          "); a restart would fail"));
      }
      if (!(*now)->SameSecret(*p.keys)) {
        return absl::FailedPreconditionError(
            "ticket_key_file's contents changed: restart to apply");
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::shared_ptr<const TicketKeys>> keys = TicketKeys::Create(settings);
  if (!keys.ok()) return keys.status();
  p.keys = *std::move(keys);
  p.settings = settings;
  p.set = true;
  return absl::OkStatus();
}

std::shared_ptr<const TicketKeys> ProcessTicketKeys() {
  ProcessKeys& p = Process();
  std::lock_guard<std::mutex> lock(p.mu);
  return p.keys;
}

void ForgetTicketKeys() {
  ProcessKeys& p = Process();
  std::lock_guard<std::mutex> lock(p.mu);
  p.set = false;
  p.settings = TlsGlobalSettings{};
  p.keys.reset();
}

}  // namespace ringproxy
