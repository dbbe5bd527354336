// Properties of the memcached binary-protocol parser on arbitrary bytes:
//  - views lie inside the input; consumed <= input;
//  - parse(encode(parse(x))) == parse(x), and the encoding equals the consumed bytes;
//  - every prefix shorter than a whole message is kNeedMore (or the same early error).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/memcache_codec.h"
#include "tests/fuzz/fuzz.h"

using namespace ringproxy::memcache;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const Limits limits{4096};
  for (auto parse : {&ParseResponse, &ParseRequest}) {
    ParseResult r = parse(in, limits);
    if (r.error != ParseError::kNone) continue;
    FUZZ_CHECK(r.consumed >= kHeaderSize && r.consumed <= in.size());
    FUZZ_CHECK(Inside(r.message.extras, in) && Inside(r.message.key, in) &&
               Inside(r.message.value, in));
    std::string again;
    if (parse == &ParseResponse) {
      EncodeResponse(r.message, &again);
      FUZZ_CHECK(again == in.substr(0, r.consumed));
    }
    for (size_t n = 0; n < r.consumed; ++n) {
      ParseError e = parse(in.substr(0, n), limits).error;
      FUZZ_CHECK(e == ParseError::kNeedMore || e == ParseError::kBadMagic);
    }
  }
  return 0;
}
