#include "tls/context_setup.h"

// options.h first: it carries the build's feature macros and struct layout choices.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ringproxy::tls {

const char kCipherList[] =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

const char kGroupList[] = "X25519:P-256:X448:P-521:P-384";

namespace {

// A certificate chain or key file larger than this is a mistake (a log, a bundle).
constexpr size_t kPemFileMaxBytes = 1 << 20;

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, const char* what) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "': ", strerror(errno)));
  std::string data;
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "': ", strerror(e)));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kPemFileMaxBytes) {
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", path, "': larger than 1 MiB, not a PEM file"));
    }
  }
  close(fd);
  if (data.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "': empty"));
  return data;
}

EcdsaCurve CurveOf(int curve_id) {
  switch (curve_id) {
    case ECC_SECP256R1:
      return EcdsaCurve::kP256;
    case ECC_SECP384R1:
      return EcdsaCurve::kP384;
    case ECC_SECP521R1:
      return EcdsaCurve::kP521;
    default:
      return EcdsaCurve::kOther;
  }
}

// The key's kind from its PEM (SEC 1, PKCS#1 or PKCS#8; both decoders take PKCS#8).
KeyInfo DescribeKey(const std::string& pem) {
  KeyInfo info;
  std::vector<byte> der(pem.size());
  int der_bytes =
      wc_KeyPemToDer(reinterpret_cast<const byte*>(pem.data()), static_cast<int>(pem.size()),
                     der.data(), static_cast<int>(der.size()), nullptr);
  if (der_bytes <= 0) return info;
  ecc_key ecc;
  if (wc_ecc_init(&ecc) == 0) {
    word32 idx = 0;
    if (wc_EccPrivateKeyDecode(der.data(), &idx, &ecc, static_cast<word32>(der_bytes)) == 0) {
      info.kind = KeyKind::kEcdsa;
      info.curve = CurveOf(wc_ecc_get_curve_id(ecc.idx));
    }
    wc_ecc_free(&ecc);
  }
  if (info.kind == KeyKind::kOther) {
    RsaKey rsa;
    if (wc_InitRsaKey(&rsa, nullptr) == 0) {
      word32 idx = 0;
      if (wc_RsaPrivateKeyDecode(der.data(), &idx, &rsa, static_cast<word32>(der_bytes)) == 0) {
        info.kind = KeyKind::kRsa;
      }
      wc_FreeRsaKey(&rsa);
    }
  }
  memset(der.data(), 0, der.size());
  return info;
}

}  // namespace

absl::Status ApplyPolicy(WOLFSSL_CTX* ctx, const std::string& what) {
  if (wolfSSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != WOLFSSL_SUCCESS) {
    return absl::InternalError(absl::StrCat(what, ": cannot set TLS 1.2 as the minimum"));
  }
  if (wolfSSL_CTX_set_cipher_list(ctx, kCipherList) != WOLFSSL_SUCCESS) {
    return absl::InternalError(absl::StrCat(what, ": wolfSSL refused the cipher list"));
  }
  // set_curves_list, not set1_groups_list: only the former also marks every other curve
  // disabled, which is what TLS 1.2's curve choice reads (tls.c wolfSSL_curve_is_disabled).
  if (wolfSSL_CTX_set1_curves_list(ctx, kGroupList) != WOLFSSL_SUCCESS) {
    return absl::InternalError(absl::StrCat(what, ": wolfSSL refused the group list"));
  }
  wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_NO_COMPRESSION | WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
  wolfSSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
  // Two calls: the mode is compared with ==, so OFF combined with other bits would not
  // set sessionCacheOff (ssl.c wolfSSL_CTX_set_session_cache_mode).
  wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
  wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_NO_INTERNAL);
  return absl::OkStatus();
}

absl::StatusOr<PemPair> ReadPemPair(const std::string& certificate_path,
                                    const std::string& key_path) {
  PemPair pair;
  pair.certificate_path = certificate_path;
  pair.key_path = key_path;
  absl::StatusOr<std::string> certificate = ReadSmallFile(certificate_path, "certificate");
  if (!certificate.ok()) return certificate.status();
  absl::StatusOr<std::string> key = ReadSmallFile(key_path, "key");
  if (!key.ok()) return key.status();
  pair.certificate = *std::move(certificate);
  pair.key = *std::move(key);
  return pair;
}

absl::Status LoadPair(WOLFSSL_CTX* ctx, const PemPair& pair, KeyInfo* info) {
  int ret = wolfSSL_CTX_use_certificate_chain_buffer_format(
      ctx, reinterpret_cast<const unsigned char*>(pair.certificate.data()),
      static_cast<long>(pair.certificate.size()), WOLFSSL_FILETYPE_PEM);
  if (ret != WOLFSSL_SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate '", pair.certificate_path,
                     "': not a PEM certificate chain: ", WolfErrorText(ret)));
  }
  ret = wolfSSL_CTX_use_PrivateKey_buffer(ctx,
                                          reinterpret_cast<const unsigned char*>(pair.key.data()),
                                          static_cast<long>(pair.key.size()), WOLFSSL_FILETYPE_PEM);
  if (ret != WOLFSSL_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key '", pair.key_path, "': not an unencrypted PEM private key: ", WolfErrorText(ret)));
  }
  ret = wolfSSL_CTX_check_private_key(ctx);
  if (ret != WOLFSSL_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key '", pair.key_path, "' does not belong to certificate '", pair.certificate_path, "'"));
  }
  *info = DescribeKey(pair.key);
  return absl::OkStatus();
}

absl::StatusOr<PemPair> MakePlaceholderPair() {
  WC_RNG rng;
  if (wc_InitRng(&rng) != 0) return absl::InternalError("placeholder certificate: RNG failed");
  ecc_key key;
  std::vector<byte> der(4096), pem(8192);
  PemPair pair;
  pair.certificate_path = pair.key_path = "(placeholder)";
  bool ok = wc_ecc_init(&key) == 0;
  ok = ok && wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) == 0;
  // Cert is ~20 KiB (room for 16 KiB of alt names): not for the stack.
  std::unique_ptr<Cert> cert_storage = std::make_unique<Cert>();
  Cert& cert = *cert_storage;
  ok = ok && wc_InitCert(&cert) == 0;
  int der_bytes = 0, pem_bytes = 0;
  if (ok) {
    strncpy(cert.subject.commonName, "ringproxy strict SNI placeholder", CTC_NAME_SIZE - 1);
    cert.sigType = CTC_SHA256wECDSA;
    cert.daysValid = 3650;
    der_bytes =
        wc_MakeCert_ex(&cert, der.data(), static_cast<word32>(der.size()), ECC_TYPE, &key, &rng);
    ok = der_bytes > 0;
  }
  if (ok) {
    der_bytes = wc_SignCert_ex(cert.bodySz, cert.sigType, der.data(),
                               static_cast<word32>(der.size()), ECC_TYPE, &key, &rng);
    ok = der_bytes > 0;
  }
  if (ok) {
    pem_bytes = wc_DerToPem(der.data(), static_cast<word32>(der_bytes), pem.data(),
                            static_cast<word32>(pem.size()), CERT_TYPE);
    ok = pem_bytes > 0;
  }
  if (ok) pair.certificate.assign(reinterpret_cast<char*>(pem.data()), pem_bytes);
  if (ok) {
    der_bytes = wc_EccKeyToDer(&key, der.data(), static_cast<word32>(der.size()));
    pem_bytes = der_bytes > 0 ? wc_DerToPem(der.data(), static_cast<word32>(der_bytes), pem.data(),
                                            static_cast<word32>(pem.size()), ECC_PRIVATEKEY_TYPE)
                              : -1;
    ok = pem_bytes > 0;
  }
  if (ok) pair.key.assign(reinterpret_cast<char*>(pem.data()), pem_bytes);
  wc_ecc_free(&key);
  wc_FreeRng(&rng);
  memset(der.data(), 0, der.size());
  memset(pem.data(), 0, pem.size());
  if (!ok) return absl::InternalError("placeholder certificate: wolfCrypt failed");
  return pair;
}

absl::Status JoinAlpn(const std::vector<std::string>& protocols, std::string* list) {
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255 || p.find(',') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("alpn: '", p, "' is not a protocol name (1 to 255 bytes, no comma)"));
    }
    if (!list->empty()) list->push_back(',');
    list->append(p);
  }
  return absl::OkStatus();
}

std::string WolfErrorText(int code) {
  char text[WOLFSSL_MAX_ERROR_SZ];
  wolfSSL_ERR_error_string_n(static_cast<unsigned long>(static_cast<long>(code)), text,
                             sizeof(text));
  return absl::StrCat(text, " (", code, ")");
}

// What a finished handshake still holds, and what we drop (5.5.4 internal.c
// FreeHandshakeResources runs right after this callback):
//  * TLS 1.2: wolfSSL frees the arrays (secrets, randoms), handshake hashes and keys
//    itself; nothing to add.
//  * TLS 1.3: this build has WOLFSSL_POST_HANDSHAKE_AUTH, so wolfSSL keeps the arrays
//    and the handshake hashes "for post-handshake authentication", which we never do.
//    The arrays can go (wolfSSL_FreeArrays; key updates use ssl->clientSecret /
//    serverSecret, and post-handshake messages are parsed without them,
//    tls13.c DoTls13HandShakeMsg). The hashes have no public free function.
// The record buffers need nothing from us: wolfSSL returns to the 5-byte static buffers
// once a record is consumed (ShrinkInputBuffer) and the output is flushed
// (ShrinkOutputBuffer).
int TrimAfterHandshake(WOLFSSL* ssl, void* /*unused*/) {
  wolfSSL_FreeArrays(ssl);
  return 0;
}

}  // namespace ringproxy::tls
