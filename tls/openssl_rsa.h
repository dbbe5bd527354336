// RSA private-key signatures through OpenSSL's libcrypto, for the TLS handshake's one
// RSA operation (tls/rsa_offload.h installs it into wolfSSL). Why: on the machines we
// measure, wolfSSL 5.5.4's RSA-2048 private operation (SP x86_64, AVX2) takes ~410 µs
// and OpenSSL 3's ~220 µs (it has AVX-512 IFMA code), and a full RSA handshake is two
// thirds that operation. Only this: no other OpenSSL code runs in ringproxy.
//
// Its own translation unit with OpenSSL's headers only: wolfSSL's compatibility layer
// defines OpenSSL's names as macros, so the two sets of headers cannot meet.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringproxy::tls {

enum class RsaPadding : uint8_t {
  kPkcs1,  // `in` is the DigestInfo-encoded digest (TLS 1.2 RSA signatures)
  kPss,    // `in` is the digest; salt = digest length (TLS 1.3, TLS 1.2 rsa_pss_*)
};

// Signs with the private key `key_der` (PKCS#1 or PKCS#8 DER). For PSS, digest_bits is
// 256, 384 or 512 (the digest and MGF1 hash). Writes the signature to out (capacity
// *out_len) and its length to *out_len. Keys are parsed once per thread and cached
// (by content), so a handshake costs the signature alone. False on any failure.
bool OpensslRsaSign(const uint8_t* key_der, size_t key_len, RsaPadding padding, int digest_bits,
                    const uint8_t* in, size_t in_len, uint8_t* out, size_t* out_len);

}  // namespace ringproxy::tls
