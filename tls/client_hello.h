// What a ClientHello says about the certificates its client can use, for names that
// have both an ECDSA and an RSA pair, and the server name it asks for. Pure: bytes in, flags out,
// no allocation.
//
// Why we read the ClientHello ourselves: wolfSSL 5.5.4 keeps one certificate per
// WOLFSSL, and no callback that runs before the certificate is fixed can see the
// client's cipher suites or signature algorithms (they live in a local `Suites` of
// DoClientHello / DoTls13ClientHello; wolfSSL_get_client_suites_sigalgs came in 5.6).
// The servername callback does run before the suite and the signature algorithm are
// chosen (TLS 1.2: internal.c DoClientHello, SNI_Callback before MatchSuite; TLS 1.3:
// tls13.c DoTls13ClientHello, SNI_Callback before MatchSuite/PickHashSigAlgo), so the
// TLS stream hands us the first flight's bytes (TlsServerShardContext::NoteClientHello)
// and the servername callback picks the pair from these flags.
//
// The choice (ChooseCertificate):
//  * TLS 1.3 offered (supported_versions has 0x0304): ECDSA when the client lists the
//    ECDSA scheme wolfSSL will need for our key (it wants the hash to match the curve:
//    P-256 -> ecdsa_secp256r1_sha256 ...), else RSA when it lists an RSA-PSS scheme;
//  * TLS 1.2 only: ECDSA when it offers one of our ECDHE-ECDSA suites and, if it sent
//    signature_algorithms, any ECDSA scheme; else RSA when it offers an ECDHE-RSA suite;
//  * anything unclear (no bytes, a ClientHello split over two reads, SSLv2 format):
//    ECDSA, the primary pair. RFC 8446 9.1 makes ecdsa_secp256r1_sha256 mandatory for
//    TLS 1.3 clients, so this is right for nearly every client anyway.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringproxy::tls {

struct ClientHelloInfo {
  bool complete = false;      // a whole ClientHello was parsed
  bool offers_tls13 = false;  // supported_versions lists TLS 1.3
  bool has_sigalgs = false;   // signature_algorithms was sent
  // TLS 1.2 suites we serve (tls/context_setup.cc's cipher list).
  bool ecdsa_suite = false;
  bool rsa_suite = false;
  // Signature schemes.
  bool ecdsa_p256_sha256 = false;  // 0x0403
  bool ecdsa_p384_sha384 = false;  // 0x0503
  bool ecdsa_p521_sha512 = false;  // 0x0603
  bool ecdsa_any = false;          // any ECDSA scheme, including SHA-1/SHA-224 ones
  bool rsa_pss = false;            // rsa_pss_rsae_* or rsa_pss_pss_*
  bool rsa_pkcs1 = false;          // rsa_pkcs1_* (TLS 1.2 ServerKeyExchange)
  // server_name's first entry when it is a host_name, as sent (not normalised; empty
  // when it is longer than the buffer). Not packed: session tickets are bound to it
  // (tls/ticket_keys.h), and TLS 1.2 may decrypt a ticket before wolfSSL parses it.
  bool has_server_name = false;
  uint8_t server_name_bytes = 0;
  char server_name[255];

  // Packed into the low bits of a pointer-sized slot (wolfSSL ex_data). Bit 0 is set
  // for any packed value, so 0 means "nothing noted".
  uint32_t Pack() const;
  static ClientHelloInfo Unpack(uint32_t bits);
};

// Parses the start of a downstream TLS stream: TLS records of type handshake carrying a
// ClientHello (which may span records). Anything else gives complete = false.
ClientHelloInfo ScanClientHello(const uint8_t* data, size_t size);

enum class EcdsaCurve : uint8_t { kP256, kP384, kP521, kOther };
enum class CertChoice : uint8_t { kEcdsa, kRsa };
CertChoice ChooseCertificate(const ClientHelloInfo& info, EcdsaCurve curve);

}  // namespace ringproxy::tls
