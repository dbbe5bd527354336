// AES-128-GCM and ECDSA P-256 speed of the wolfSSL build the binaries link: the reason
// for building wolfSSL from source with its assembly (tools/lib/wolfssl.sh).
#include <benchmark/benchmark.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <vector>

namespace {

void BM_AesGcm128Encrypt(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  Aes aes;
  byte key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  byte iv[12] = {0};
  byte tag[16];
  std::vector<byte> in(size, 0x5a), out(size);
  wc_AesInit(&aes, nullptr, INVALID_DEVID);
  wc_AesGcmSetKey(&aes, key, sizeof(key));
  for (auto _ : state) {
    wc_AesGcmEncrypt(&aes, out.data(), in.data(), static_cast<word32>(size), iv, sizeof(iv), tag,
                     sizeof(tag), nullptr, 0);
    ++iv[0];
  }
  wc_AesFree(&aes);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}
BENCHMARK(BM_AesGcm128Encrypt)->Arg(16384);

void BM_EcdsaP256Sign(benchmark::State& state) {
  WC_RNG rng;
  wc_InitRng(&rng);
  ecc_key key;
  wc_ecc_init(&key);
  wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1);
  byte hash[32] = {7};
  byte sig[128];
  for (auto _ : state) {
    word32 len = sizeof(sig);
    wc_ecc_sign_hash(hash, sizeof(hash), sig, &len, &rng, &key);
  }
  wc_ecc_free(&key);
  wc_FreeRng(&rng);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EcdsaP256Sign);

}  // namespace

BENCHMARK_MAIN();
