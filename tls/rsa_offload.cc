#include "tls/rsa_offload.h"

// options.h first: it carries the build's feature macros and struct layout choices.
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "tls/openssl_rsa.h"

namespace ringproxy::tls {
namespace {

int Sign(const unsigned char* in, unsigned int in_size, unsigned char* out, unsigned int* out_size,
         RsaPadding padding, int digest_bits, const unsigned char* key, unsigned int key_size) {
  size_t len = *out_size;
  if (!OpensslRsaSign(key, key_size, padding, digest_bits, in, in_size, out, &len)) {
    return RSA_BUFFER_E;  // the handshake fails with this wolfSSL error
  }
  *out_size = static_cast<unsigned int>(len);
  return 0;
}

int RsaSign(WOLFSSL* /*ssl*/, const unsigned char* in, unsigned int in_size, unsigned char* out,
            unsigned int* out_size, const unsigned char* key, unsigned int key_size,
            void* /*ctx*/) {
  return Sign(in, in_size, out, out_size, RsaPadding::kPkcs1, 0, key, key_size);
}

int RsaPssSign(WOLFSSL* /*ssl*/, const unsigned char* in, unsigned int in_size, unsigned char* out,
               unsigned int* out_size, int hash, int /*mgf*/, const unsigned char* key,
               unsigned int key_size, void* /*ctx*/) {
  // TLS uses MGF1 with the signature's own digest, which is what OpensslRsaSign does.
  int bits = hash == SHA256h ? 256 : hash == SHA384h ? 384 : hash == SHA512h ? 512 : 0;
  if (bits == 0) return BAD_FUNC_ARG;
  return Sign(in, in_size, out, out_size, RsaPadding::kPss, bits, key, key_size);
}

}  // namespace

void InstallRsaOffload(WOLFSSL_CTX* ctx) {
  wolfSSL_CTX_SetRsaSignCb(ctx, &RsaSign);
  wolfSSL_CTX_SetRsaPssSignCb(ctx, &RsaPssSign);
}

}  // namespace ringproxy::tls
