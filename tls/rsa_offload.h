// Routes a server context's RSA signatures (the handshake's CertificateVerify /
// ServerKeyExchange) to OpenSSL's faster RSA (tls/openssl_rsa.h) through wolfSSL's
// public-key callbacks. wolfSSL still checks every signature it sends against the
// public key (its fault check), so a wrong signature can never leave.
#pragma once

struct WOLFSSL_CTX;

namespace ringproxy::tls {

// For a context whose private key is RSA; harmless on others (never called).
void InstallRsaOffload(WOLFSSL_CTX* ctx);

}  // namespace ringproxy::tls
