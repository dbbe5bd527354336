// The load generator's HTTP response reader: fed whole or one byte at a time, it
// reaches the same outcome (done or failed, status, body bytes, keep-alive, consumed).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bench/loadgen/http_response.h"
#include "tests/fuzz/fuzz.h"

using ringproxy::loadgen::HttpResponseReader;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HttpResponseReader whole, bytes;
  size_t used_whole = whole.Feed(in);
  size_t used_bytes = 0;
  while (used_bytes < in.size() && !bytes.done() && !bytes.failed()) {
    size_t n = bytes.Feed(in.substr(used_bytes, 1));
    if (n == 0) break;
    used_bytes += n;
  }
  FUZZ_CHECK(used_whole <= in.size());
  FUZZ_CHECK(whole.done() == bytes.done());
  FUZZ_CHECK(whole.failed() == bytes.failed());
  if (whole.done()) {
    FUZZ_CHECK(used_whole == used_bytes);
    FUZZ_CHECK(whole.status() == bytes.status());
    FUZZ_CHECK(whole.body_bytes() == bytes.body_bytes());
    FUZZ_CHECK(whole.keep_alive() == bytes.keep_alive());
  }
  if (whole.failed()) FUZZ_CHECK(whole.error() == bytes.error());
  return 0;
}
