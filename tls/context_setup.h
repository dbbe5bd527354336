// Internal to tls/: the product's TLS policy applied to a WOLFSSL_CTX, certificate and
// key loading with errors a person can act on, and the trimming a session gets when its
// handshake is done. Shared by the server and client contexts; not for other modules.
//
// Policy (every CTX, both sides):
//  * TLS 1.2 and 1.3 only. wolfSSL was built with TLS 1.1 (no NO_OLD_TLS) and its
//    OPENSSL_COMPATIBLE_DEFAULTS set the minimum to SSLv3, which it turns into TLS 1.1
//    (ssl.c Set_CTX_min_proto_version; TLS 1.0 is not compiled: no
//    WOLFSSL_ALLOW_TLSV10), so the minimum is set to 1.2 explicitly.
//  * AEAD suites with forward secrecy only: the TLS 1.3 suites and ECDHE with AES-GCM or
//    ChaCha20-Poly1305. An explicit list is required: the build has anonymous, NULL and
//    RC4 suites, and the compatible defaults allow the anonymous ones.
//  * Key exchange groups X25519, P-256, X448, P-521, P-384 (OpenSSL's default set), both
//    versions. The build also has brainpool, secp256k1 and smaller curves; those run on
//    wolfSSL's generic ECC code, whose FP_ECC cache builds a ~800 KB table per curve in
//    each thread that uses one (the policy's curves have their own SP/25519/448 code).
//  * Server order of suites (wolfSSL's default useClientOrder = 0; we never call
//    wolfSSL_CTX_ctrl(SSL_CTRL_OPTIONS), which in this WOLFSSL_QT build would flip it).
//  * No compression (not compiled: no HAVE_LIBZ; the option is set anyway), no
//    renegotiation (HAVE_SECURE_RENEGOTIATION is not compiled: a ClientHello after the
//    handshake is a fatal unexpected_message, internal.c DoHandShakeMsgType; checked
//    with OpenSSL's "R" in tests/tls/openssl_interop_test.cc).
//  * wolfSSL's internal session cache off. It is a process-wide table (33 sessions here,
//    mutex-protected). WOLFSSL_SESS_CACHE_OFF alone is not enough in this build:
//    WOLFSSL_FORCE_CACHE_ON_TICKET makes SslSessionCacheOff() false for any session that
//    carries a ticket, so every ticket-issuing handshake would reach AddSessionToCache
//    and its global lock; NO_INTERNAL_STORE / NO_INTERNAL_LOOKUP skip the table
//    (ssl.c AddSession, wolfSSL_GetSessionFromCache). NO_SESSION_CACHE_REF only changes
//    what wolfSSL_get_session returns on a client (ssl->session, not a cache row).
//    tests/tls/session_memory_test.cc checks that a server handshake takes no mutex but
//    its own CTX's reference-count lock.
//  * SSL_MODE_AUTO_RETRY off (the compatible defaults set it): with it, a recv callback
//    that says WANT_READ is called again up to 10 times before the handshake is done.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tls/client_hello.h"

struct WOLFSSL;
struct WOLFSSL_CTX;

namespace ringproxy::tls {

// The TLS 1.3 suites, then ECDHE-ECDSA / ECDHE-RSA with AES-128-GCM, AES-256-GCM,
// ChaCha20-Poly1305 (wolfSSL names). AES first: it has AES-NI here.
extern const char kCipherList[];
// The key exchange groups, in our order of preference (wolfSSL names).
extern const char kGroupList[];

// Version floor, suites, options, session cache, modes. `what` names the CTX in errors.
absl::Status ApplyPolicy(WOLFSSL_CTX* ctx, const std::string& what);

// A certificate chain and key, as PEM text, with the paths they came from.
struct PemPair {
  std::string certificate_path;
  std::string key_path;
  std::string certificate;
  std::string key;
};
absl::StatusOr<PemPair> ReadPemPair(const std::string& certificate_path,
                                    const std::string& key_path);

enum class KeyKind : uint8_t { kEcdsa, kRsa, kOther };
struct KeyInfo {
  KeyKind kind = KeyKind::kOther;
  EcdsaCurve curve = EcdsaCurve::kOther;  // for kEcdsa
};

// Loads chain and key into `ctx` and checks that they belong together; the key's kind
// (for choosing between a name's two pairs) goes to `info`.
absl::Status LoadPair(WOLFSSL_CTX* ctx, const PemPair& pair, KeyInfo* info);

// A throwaway self-signed ECDSA pair for the default CTX of a strict listener without a
// default: wolfSSL_new refuses a server CTX without a certificate (internal.c
// InitSSL_Suites), but strict selection refuses every handshake before it is sent.
absl::StatusOr<PemPair> MakePlaceholderPair();

// Checks ALPN protocol names (1 to 255 bytes, no comma) and joins them with commas, the
// form wolfSSL_UseALPN takes.
absl::Status JoinAlpn(const std::vector<std::string>& protocols, std::string* list);

// "<wolfSSL's text> (<code>)".
std::string WolfErrorText(int code);

// Installed as each session's handshake-done callback: drops what a finished handshake
// no longer needs (see the comment in context_setup.cc).
int TrimAfterHandshake(WOLFSSL* ssl, void* unused);

}  // namespace ringproxy::tls
