// Properties of the ClientHello scan (tls/client_hello.h), which reads bytes a peer sends
// before any handshake state exists. The input is a handshake payload; the target wraps
// it into TLS records. Checked: the scan gives the same flags whatever the record sizes
// (a hello may span records), a "complete" hello lies within the input and any cut inside
// it is not complete, and the packed flags survive a round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz.h"
#include "tls/client_hello.h"

using namespace ringproxy::tls;

namespace {

std::string Records(const uint8_t* data, size_t size, size_t fragment) {
  std::string out;
  for (size_t i = 0; i < size; i += fragment) {
    size_t n = size - i < fragment ? size - i : fragment;
    out += std::string{22, 3, 3, static_cast<char>(n >> 8), static_cast<char>(n & 0xff)};
    out.append(reinterpret_cast<const char*>(data + i), n);
  }
  return out;
}

ClientHelloInfo Scan(const std::string& s) {
  return ScanClientHello(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 60000) return 0;
  ClientHelloInfo raw = ScanClientHello(data, size);  // also as if it were records
  FUZZ_CHECK(ClientHelloInfo::Unpack(raw.Pack()).Pack() == raw.Pack());
  std::string whole = Records(data, size, 16384);
  ClientHelloInfo info = Scan(whole);
  FUZZ_CHECK(ClientHelloInfo::Unpack(info.Pack()).Pack() == info.Pack());
  for (size_t fragment : {1, 7, 100}) {
    FUZZ_CHECK(Scan(Records(data, size, fragment)).Pack() == info.Pack());
  }
  // Bytes after the hello do not matter; a cut inside it leaves it incomplete.
  if (info.complete) {
    FUZZ_CHECK(size >= 4);
    size_t hello = 4 + (size_t{data[1]} << 16 | size_t{data[2]} << 8 | data[3]);
    FUZZ_CHECK(hello <= size);
    for (size_t cut : {hello - 1, hello / 2, size_t{4}}) {
      FUZZ_CHECK(!Scan(Records(data, cut, 16384)).complete);
    }
  }
  return 0;
}
