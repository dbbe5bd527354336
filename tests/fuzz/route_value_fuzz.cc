// Properties of the memcached route value parser ("IP:port", "[v6]:port") on arbitrary
// bytes: a value it accepts has a port in 1..65535 and a host with no brackets, and
// writing it back parses to the same host and port.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "route/keys.h"
#include "tests/fuzz/fuzz.h"

using namespace ringproxy::keys;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string host;
  uint16_t port = 0;
  if (!ParseRouteValue(in, &host, &port)) return 0;
  FUZZ_CHECK(port != 0 && !host.empty());
  FUZZ_CHECK(host.find_first_of("[]") == std::string::npos);
  std::string again_host;
  uint16_t again_port = 0;
  FUZZ_CHECK(ParseRouteValue(RouteValue(host, port), &again_host, &again_port));
  FUZZ_CHECK(again_host == host && again_port == port);
  return 0;
}
