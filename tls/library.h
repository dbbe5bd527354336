// The TLS library as linked: wolfSSL's version and whether the assembly build (AES-NI,
// AVX, SP x86_64) is in. TLS termination itself arrives with the TLS roadmap item; the
// build links wolfSSL from the start so `ringproxy --version` can prove which build
// is in the binary.
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

}  // namespace ringproxy
