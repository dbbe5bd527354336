// RSA signatures through OpenSSL (tls/openssl_rsa.h), checked with wolfCrypt's public
// key operations: PKCS#1 v1.5 over a DigestInfo (TLS 1.2) and PSS with the digest's
// salt length (TLS 1.3), refusals for what is not an RSA private key.
#include "tls/openssl_rsa.h"

#include <gtest/gtest.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include <string>
#include <vector>

#include "tests/tls/tls_testing.h"
#include "tls/library.h"

namespace ringproxy::tls {
namespace {

using testing::KeyType;
using testing::TestPki;

std::vector<uint8_t> KeyDer(const std::string& pem) {
  std::vector<uint8_t> der(4096);
  int n = wc_KeyPemToDer(reinterpret_cast<const byte*>(pem.data()), static_cast<int>(pem.size()),
                         der.data(), static_cast<word32>(der.size()), nullptr);
  EXPECT_GT(n, 0);
  der.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return der;
}

class OpensslRsaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitTlsLibrary().ok());
    der_ = KeyDer(TestPki::Shared().Issue({"rsa.test"}, KeyType::kRsa2048).key);
    ASSERT_EQ(wc_InitRsaKey(&pub_, nullptr), 0);
    word32 idx = 0;
    ASSERT_EQ(wc_RsaPrivateKeyDecode(der_.data(), &idx, &pub_, static_cast<word32>(der_.size())),
              0);
  }
  void TearDown() override { wc_FreeRsaKey(&pub_); }
  std::vector<uint8_t> der_;
  RsaKey pub_;  // the same key, for wolfCrypt's verification
};

TEST_F(OpensslRsaTest, Pkcs1SignatureOfADigestInfoVerifies) {
  // A SHA-256 DigestInfo, as TLS 1.2 hands it to the RSA sign callback.
  uint8_t digest[32];
  for (int i = 0; i < 32; ++i) digest[i] = static_cast<uint8_t>(i * 7);
  uint8_t info[64];
  word32 info_len = wc_EncodeSignature(info, digest, sizeof(digest), SHA256h);
  ASSERT_GT(info_len, 32u);
  uint8_t sig[256];
  size_t sig_len = sizeof(sig);
  ASSERT_TRUE(OpensslRsaSign(der_.data(), der_.size(), RsaPadding::kPkcs1, 0, info, info_len, sig,
                             &sig_len));
  EXPECT_EQ(sig_len, 256u);
  uint8_t plain[256];
  int n = wc_RsaSSL_Verify(sig, static_cast<word32>(sig_len), plain, sizeof(plain), &pub_);
  ASSERT_EQ(n, static_cast<int>(info_len));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(plain), info_len),
            std::string(reinterpret_cast<char*>(info), info_len));
}

TEST_F(OpensslRsaTest, PssSignaturesWithEachDigestVerify) {
  for (auto [bits, type, mgf] : {std::tuple{256, WC_HASH_TYPE_SHA256, WC_MGF1SHA256},
                                 std::tuple{384, WC_HASH_TYPE_SHA384, WC_MGF1SHA384},
                                 std::tuple{512, WC_HASH_TYPE_SHA512, WC_MGF1SHA512}}) {
    std::vector<uint8_t> digest(static_cast<size_t>(bits / 8), 0x5a);
    uint8_t sig[256];
    size_t sig_len = sizeof(sig);
    ASSERT_TRUE(OpensslRsaSign(der_.data(), der_.size(), RsaPadding::kPss, bits, digest.data(),
                               digest.size(), sig, &sig_len))
        << bits;
    uint8_t plain[256];
    int n =
        wc_RsaPSS_Verify(sig, static_cast<word32>(sig_len), plain, sizeof(plain), type, mgf, &pub_);
    ASSERT_GT(n, 0) << bits;
    EXPECT_EQ(wc_RsaPSS_CheckPadding(digest.data(), static_cast<word32>(digest.size()), plain,
                                     static_cast<word32>(n), type),
              0)
        << bits;
  }
}

TEST_F(OpensslRsaTest, WhatIsNotAnRsaPrivateKeyIsRefused) {
  uint8_t digest[32] = {1};
  uint8_t sig[256];
  size_t sig_len = sizeof(sig);
  std::vector<uint8_t> ec = KeyDer(TestPki::Shared().Issue({"ec.test"}, KeyType::kEcdsaP256).key);
  EXPECT_FALSE(
      OpensslRsaSign(ec.data(), ec.size(), RsaPadding::kPss, 256, digest, 32, sig, &sig_len));
  std::vector<uint8_t> junk(100, 0x30);
  EXPECT_FALSE(
      OpensslRsaSign(junk.data(), junk.size(), RsaPadding::kPss, 256, digest, 32, sig, &sig_len));
  EXPECT_FALSE(
      OpensslRsaSign(der_.data(), der_.size(), RsaPadding::kPss, 224, digest, 28, sig, &sig_len));
  size_t small = 16;  // no room for a 256-byte signature
  EXPECT_FALSE(
      OpensslRsaSign(der_.data(), der_.size(), RsaPadding::kPss, 256, digest, 32, sig, &small));
}

}  // namespace
}  // namespace ringproxy::tls
