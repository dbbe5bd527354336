#include "tls/library.h"

// options.h first: it carries the build's feature macros and struct layout choices.
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

namespace ringproxy {

TlsLibraryInfo GetTlsLibraryInfo() {
  TlsLibraryInfo info;
  info.version = wolfSSL_lib_version();
#if defined(WOLFSSL_AESNI)
  info.aesni = true;
#endif
#if defined(USE_INTEL_SPEEDUP)
  info.intel_asm = true;
#endif
#if defined(WOLFSSL_SP_X86_64_ASM)
  info.sp_asm = true;
#endif
  return info;
}

absl::Status InitTlsLibrary() {
  if (wolfSSL_Init() != WOLFSSL_SUCCESS) return absl::InternalError("wolfSSL_Init failed");
  return absl::OkStatus();
}

void ReleaseThreadTlsState() {
#if defined(HAVE_ECC) && defined(FP_ECC)
  wc_ecc_fp_free();
#endif
}

}  // namespace ringproxy
