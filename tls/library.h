// The TLS library as linked: wolfSSL's version and whether the assembly build (AES-NI,
// AVX, SP x86_64) is in (`ringproxy --version` prints it); its process and per-thread
// set-up and clean-up.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace ringproxy {

struct TlsLibraryInfo {
  std::string version;  // wolfSSL_lib_version()
  bool aesni = false;
  bool intel_asm = false;
  bool sp_asm = false;
};

TlsLibraryInfo GetTlsLibraryInfo();

// wolfSSL_Init(); once per process, before any TLS object is made.
absl::Status InitTlsLibrary();

// Frees what wolfSSL keeps per thread (the FP_ECC point tables, thread-local in this
// build). Call on a thread that made TLS objects, after its last one is gone.
void ReleaseThreadTlsState();

}  // namespace ringproxy
