#include "tls/openssl_rsa.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <list>
#include <string>
#include <string_view>
#include <utility>

namespace ringproxy::tls {
namespace {

// Keys this thread has parsed, most recent first. Few (one per RSA certificate in
// use), so a short list beats a hash map; bounded so a directory of thousands of RSA
// names cannot grow it without end.
constexpr size_t kCachedKeys = 64;

struct CachedKey {
  std::string der;
  EVP_PKEY* key = nullptr;
};

struct KeyCache {
  std::list<CachedKey> keys;
  ~KeyCache() {
    for (CachedKey& k : keys) EVP_PKEY_free(k.key);
  }
  EVP_PKEY* Get(const uint8_t* der, size_t len) {
    const std::string_view wanted(reinterpret_cast<const char*>(der), len);
    for (auto it = keys.begin(); it != keys.end(); ++it) {
      if (it->der == wanted) {
        keys.splice(keys.begin(), keys, it);
        return it->key;
      }
    }
    const unsigned char* p = der;
    EVP_PKEY* key = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(len));
    if (key == nullptr) return nullptr;
    if (keys.size() >= kCachedKeys) {
      EVP_PKEY_free(keys.back().key);
      keys.pop_back();
    }
    keys.push_front(CachedKey{std::string(wanted), key});
    return key;
  }
};

thread_local KeyCache t_keys;

const EVP_MD* DigestOf(int bits) {
  switch (bits) {
    case 256:
      return EVP_sha256();
    case 384:
      return EVP_sha384();
    case 512:
      return EVP_sha512();
    default:
      return nullptr;
  }
}

}  // namespace

bool OpensslRsaSign(const uint8_t* key_der, size_t key_len, RsaPadding padding, int digest_bits,
                    const uint8_t* in, size_t in_len, uint8_t* out, size_t* out_len) {
  EVP_PKEY* key = t_keys.Get(key_der, key_len);
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) return false;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
  if (ctx == nullptr) return false;
  bool ok = EVP_PKEY_sign_init(ctx) == 1;
  if (ok && padding == RsaPadding::kPkcs1) {
    // No signature digest set: OpenSSL pads `in` (already a DigestInfo) as it is.
    ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
  } else if (ok) {
    const EVP_MD* md = DigestOf(digest_bits);
    ok = md != nullptr && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) == 1;
  }
  size_t len = *out_len;
  ok = ok && EVP_PKEY_sign(ctx, out, &len, in, in_len) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (ok) *out_len = len;
  return ok;
}

}  // namespace ringproxy::tls
