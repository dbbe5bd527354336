// Why a TLS call failed, as one short line for the log: built only where an error is
// logged (it allocates). Works for handshake, read, write and shutdown results.
#pragma once

#include <string>

struct WOLFSSL;

namespace ringproxy {

// `ret` is what the wolfSSL call returned. Example outputs:
//   "ASN no signer error to confirm failure (-188)"
//   "peer subject name mismatch (-322)"
//   "version below minimum allowed (-326); sent alert protocol_version"
//   "received alert unrecognized_name"
//   "want read" / "want write" (not failures: the call must be repeated)
std::string TlsErrorText(WOLFSSL* ssl, int ret);

}  // namespace ringproxy
