// Writes a private PKI for the end-to-end TLS tests into a directory, fast (wolfCrypt
// in-process, one key per type reused for every leaf):
//   ca.pem                     the CA every certificate below is signed by
//   default.crt/.key           ECDSA P-256, CN default.example.test
//   default.rsa.crt/.key       RSA-2048 for the same name
//   certs/nameNNNN.example.test.crt/.key   N names, ECDSA
//   certs/_.wild.example.test.crt/.key     *.wild.example.test
//   localhost.crt/.key         for TLS upstreams (names localhost, 127.0.0.1)
//   other-ca.pem, foreign.crt/.key        a second CA and a localhost leaf it signed
// Usage: make_test_certs DIR [N]   (N defaults to 1000)
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "fmt/format.h"
#include "tests/tls/tls_testing.h"
#include "tls/library.h"

using ringproxy::testing::KeyType;
using ringproxy::testing::TestPair;
using ringproxy::testing::TestPki;

namespace {

bool Write(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return static_cast<bool>(out);
}

bool WritePair(const std::string& stem, const TestPair& pair) {
  return Write(stem + ".crt", pair.certificate) && Write(stem + ".key", pair.key);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [N]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int n = argc > 2 ? std::stoi(argv[2]) : 1000;
  if (!ringproxy::InitTlsLibrary().ok()) return 1;
  mkdir(dir.c_str(), 0755);
  mkdir((dir + "/certs").c_str(), 0755);
  TestPki pki("ringproxy e2e CA");
  bool ok =
      Write(dir + "/ca.pem", pki.ca_pem()) &&
      WritePair(dir + "/default", pki.Issue({"default.example.test"}, KeyType::kEcdsaP256)) &&
      WritePair(dir + "/default.rsa", pki.Issue({"default.example.test"}, KeyType::kRsa2048)) &&
      WritePair(dir + "/localhost", pki.Issue({"localhost", "127.0.0.1"}, KeyType::kEcdsaP256)) &&
      WritePair(dir + "/certs/_.wild.example.test",
                pki.Issue({"*.wild.example.test"}, KeyType::kEcdsaP256));
  for (int i = 1; ok && i <= n; ++i) {
    const std::string name = fmt::format("name{:04}.example.test", i);
    ok = WritePair(dir + "/certs/" + name, pki.Issue({name}, KeyType::kEcdsaP256));
  }
  TestPki other("some other CA");
  ok = ok && Write(dir + "/other-ca.pem", other.ca_pem()) &&
       WritePair(dir + "/foreign", other.Issue({"localhost", "127.0.0.1"}, KeyType::kEcdsaP256));
  if (!ok) {
    fprintf(stderr, "make_test_certs: cannot write under %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
