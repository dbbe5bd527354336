// ClientHello scanning and the ECDSA/RSA choice (tls/client_hello.h) on ClientHellos
// built here byte by byte: suites and signature schemes found, a hello split over
// records or cut short, and the choice for TLS 1.2 and 1.3 clients. Real wolfSSL
// ClientHellos go through it in tests/tls/server_context_test.cc.
#include "tls/client_hello.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ringproxy::tls {
namespace {

using Bytes = std::string;

void Put16(uint16_t v, Bytes* out) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

Bytes Extension(uint16_t type, const Bytes& body) {
  Bytes out;
  Put16(type, &out);
  Put16(static_cast<uint16_t>(body.size()), &out);
  return out + body;
}

Bytes List16(const std::vector<uint16_t>& items) {
  Bytes out;
  Put16(static_cast<uint16_t>(2 * items.size()), &out);
  for (uint16_t i : items) Put16(i, &out);
  return out;
}

Bytes SupportedVersions(const std::vector<uint16_t>& versions) {
  Bytes body(1, static_cast<char>(2 * versions.size()));
  for (uint16_t v : versions) Put16(v, &body);
  return Extension(0x002b, body);
}

Bytes SignatureAlgorithms(const std::vector<uint16_t>& schemes) {
  return Extension(0x000d, List16(schemes));
}

// The handshake message: type 1, length, version, random, session id, suites,
// compression, extensions (omitted entirely when `extensions` is null).
Bytes Hello(const std::vector<uint16_t>& suites, const Bytes* extensions) {
  Bytes body;
  Put16(0x0303, &body);
  body += Bytes(32, 'r');
  body += Bytes(1, 32) + Bytes(32, 's');
  body += List16(suites);
  body += Bytes(1, 1) + Bytes(1, 0);
  if (extensions != nullptr) {
    Put16(static_cast<uint16_t>(extensions->size()), &body);
    body += *extensions;
  }
  Bytes msg(1, 1);
  msg.push_back(0);
  Put16(static_cast<uint16_t>(body.size()), &msg);
  return msg + body;
}

// TLS records of at most `fragment` payload bytes each.
Bytes Records(const Bytes& handshake, size_t fragment = 16384) {
  Bytes out;
  for (size_t i = 0; i < handshake.size(); i += fragment) {
    Bytes part = handshake.substr(i, fragment);
    out += Bytes(1, 22) + Bytes(1, 3) + Bytes(1, 1);
    Put16(static_cast<uint16_t>(part.size()), &out);
    out += part;
  }
  return out;
}

ClientHelloInfo Scan(const Bytes& b) {
  return ScanClientHello(reinterpret_cast<const uint8_t*>(b.data()), b.size());
}

const std::vector<uint16_t> kModernSuites = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xcca9};

Bytes Tls13Hello(const std::vector<uint16_t>& schemes) {
  Bytes ext = SupportedVersions({0x0304, 0x0303}) + SignatureAlgorithms(schemes) +
              Extension(0x0000, Bytes("\x00\x08\x00\x00\x05host1", 10));
  return Records(Hello(kModernSuites, &ext));
}

TEST(ScanClientHello, FindsVersionsSuitesAndSchemes) {
  ClientHelloInfo info = Scan(Tls13Hello({0x0403, 0x0804, 0x0401}));
  EXPECT_TRUE(info.complete);
  EXPECT_TRUE(info.offers_tls13);
  EXPECT_TRUE(info.has_sigalgs);
  EXPECT_TRUE(info.ecdsa_suite);
  EXPECT_TRUE(info.rsa_suite);
  EXPECT_TRUE(info.ecdsa_p256_sha256);
  EXPECT_FALSE(info.ecdsa_p384_sha384);
  EXPECT_TRUE(info.ecdsa_any);
  EXPECT_TRUE(info.rsa_pss);
  EXPECT_TRUE(info.rsa_pkcs1);
}

TEST(ScanClientHello, SameResultWhenSplitOverRecords) {
  Bytes ext = SupportedVersions({0x0304}) + SignatureAlgorithms({0x0503, 0x0809});
  Bytes hello = Hello(kModernSuites, &ext);
  uint32_t whole = Scan(Records(hello)).Pack();
  for (size_t fragment : {1, 2, 5, 10, 100}) {
    EXPECT_EQ(Scan(Records(hello, fragment)).Pack(), whole) << fragment;
  }
}

TEST(ScanClientHello, IncompleteOrForeignInputIsNotComplete) {
  Bytes hello = Tls13Hello({0x0403});
  for (size_t cut = 0; cut < hello.size(); ++cut) {
    EXPECT_FALSE(Scan(hello.substr(0, cut)).complete) << cut;
  }
  Bytes not_handshake = hello;
  not_handshake[0] = 23;
  EXPECT_FALSE(Scan(not_handshake).complete);
  Bytes server_hello = hello;
  server_hello[5] = 2;
  EXPECT_FALSE(Scan(server_hello).complete);
  Bytes bad_length = hello;
  bad_length[8] = static_cast<char>(bad_length[8] + 1);  // handshake length one more
  EXPECT_FALSE(Scan(bad_length).complete);
  EXPECT_FALSE(Scan("GET / HTTP/1.1\r\n\r\n").complete);
}

Bytes ServerName(uint8_t type, const Bytes& name) {
  Bytes entry(1, static_cast<char>(type));
  Put16(static_cast<uint16_t>(name.size()), &entry);
  entry += name;
  Bytes body;
  Put16(static_cast<uint16_t>(entry.size()), &body);
  return Extension(0x0000, body + entry);
}

TEST(ScanClientHello, FindsTheServerNameWhereverItIsAndInEveryFragmentation) {
  ClientHelloInfo info = Scan(Tls13Hello({0x0403}));
  ASSERT_TRUE(info.has_server_name);
  EXPECT_EQ(std::string(info.server_name, info.server_name_bytes), "host1");
  // After a session ticket (what a wolfSSL client sends when resuming), split anyhow.
  Bytes ext = Extension(0x0023, Bytes(40, 't')) + ServerName(0, "Mail.Example.test");
  Bytes hello = Hello(kModernSuites, &ext);
  for (size_t fragment : {1, 3, 7, 16384}) {
    info = Scan(Records(hello, fragment));
    ASSERT_TRUE(info.complete) << fragment;
    EXPECT_TRUE(info.has_server_name);
    EXPECT_EQ(std::string(info.server_name, info.server_name_bytes), "Mail.Example.test");
  }
  // None; a type other than host_name; one too long to keep (noted, but empty).
  EXPECT_FALSE(Scan(Records(Hello(kModernSuites, nullptr))).has_server_name);
  ext = ServerName(1, "opaque");
  info = Scan(Records(Hello(kModernSuites, &ext)));
  EXPECT_TRUE(info.complete);
  EXPECT_FALSE(info.has_server_name);
  ext = ServerName(0, Bytes(300, 'a'));
  info = Scan(Records(Hello(kModernSuites, &ext)));
  EXPECT_TRUE(info.complete);
  EXPECT_TRUE(info.has_server_name);
  EXPECT_EQ(info.server_name_bytes, 0);
  // A list length that disagrees with the extension's: not a ClientHello we read.
  Bytes bad = ServerName(0, "host1");
  bad[5] = static_cast<char>(bad[5] + 1);
  EXPECT_FALSE(Scan(Records(Hello(kModernSuites, &bad))).complete);
}

TEST(ScanClientHello, Tls12HelloWithoutExtensions) {
  ClientHelloInfo info = Scan(Records(Hello({0xc02f}, nullptr)));
  EXPECT_TRUE(info.complete);
  EXPECT_FALSE(info.has_sigalgs);
  EXPECT_TRUE(info.rsa_suite);
  EXPECT_FALSE(info.ecdsa_suite);
}

TEST(ClientHelloInfo, PackRoundTripsAndZeroMeansNothingNoted) {
  ClientHelloInfo info = Scan(Tls13Hello({0x0603, 0x0805}));
  ClientHelloInfo back = ClientHelloInfo::Unpack(info.Pack());
  EXPECT_EQ(back.Pack(), info.Pack());
  EXPECT_TRUE(back.ecdsa_p521_sha512);
  EXPECT_FALSE(ClientHelloInfo::Unpack(0).complete);
  EXPECT_LT(info.Pack(), 1u << 16);  // the server keeps bits 16+ for itself
}

TEST(ChooseCertificate, Tls13FollowsTheSchemeForOurCurve) {
  EXPECT_EQ(ChooseCertificate(Scan(Tls13Hello({0x0403, 0x0804})), EcdsaCurve::kP256),
            CertChoice::kEcdsa);
  EXPECT_EQ(ChooseCertificate(Scan(Tls13Hello({0x0804})), EcdsaCurve::kP256), CertChoice::kRsa);
  // wolfSSL wants the hash to match the curve in TLS 1.3: a P-384 key needs 0x0503.
  EXPECT_EQ(ChooseCertificate(Scan(Tls13Hello({0x0403, 0x0804})), EcdsaCurve::kP384),
            CertChoice::kRsa);
  // Neither: the primary (it will fail, but RSA would not help).
  EXPECT_EQ(ChooseCertificate(Scan(Tls13Hello({0x0401})), EcdsaCurve::kP256), CertChoice::kEcdsa);
}

TEST(ChooseCertificate, Tls12FollowsTheSuites) {
  Bytes sigalgs = SignatureAlgorithms({0x0401, 0x0403});
  EXPECT_EQ(ChooseCertificate(Scan(Records(Hello({0xc02b, 0xc02f}, &sigalgs))), EcdsaCurve::kP256),
            CertChoice::kEcdsa);
  EXPECT_EQ(ChooseCertificate(Scan(Records(Hello({0xc02f, 0xc030}, &sigalgs))), EcdsaCurve::kP256),
            CertChoice::kRsa);
  Bytes rsa_only = SignatureAlgorithms({0x0401, 0x0804});
  EXPECT_EQ(ChooseCertificate(Scan(Records(Hello({0xc02b, 0xc02f}, &rsa_only))), EcdsaCurve::kP256),
            CertChoice::kRsa);
  EXPECT_EQ(ChooseCertificate(Scan(Records(Hello({0xc02b}, nullptr))), EcdsaCurve::kP256),
            CertChoice::kEcdsa);
}

TEST(ChooseCertificate, UnknownMeansTheEcdsaPair) {
  EXPECT_EQ(ChooseCertificate(ClientHelloInfo(), EcdsaCurve::kP256), CertChoice::kEcdsa);
}

}  // namespace
}  // namespace ringproxy::tls
