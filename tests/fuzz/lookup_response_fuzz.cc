// Properties of the lookup protocol parsers (responses and requests) on arbitrary
// bytes: header views inside the input; a complete parse is stable when the input is
// cut right after it; Interpret never reads outside; escaping round-trips.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "route/lookup_codec.h"
#include "tests/fuzz/fuzz.h"

using namespace ringproxy::lookup;

namespace {

void CheckHead(const ParsedHead& h, std::string_view in) {
  FUZZ_CHECK(h.header_count <= kMaxHeaders);
  for (size_t i = 0; i < h.header_count; ++i) {
    FUZZ_CHECK(Inside(h.headers[i].name, in) && Inside(h.headers[i].value, in));
  }
  FUZZ_CHECK(Inside(h.body, in));
  FUZZ_CHECK(h.consumed <= in.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  ParsedResponse r = ParseResponse(in);
  if (r.error == Error::kNone || r.error == Error::kBadStatus) {
    CheckHead(r, in);
    ParsedResponse cut = ParseResponse(in.substr(0, r.consumed));
    FUZZ_CHECK(cut.error == r.error && cut.consumed == r.consumed);
    Answer a = Interpret(r);
    FUZZ_CHECK(Inside(a.status, in) && Inside(a.server, in) && Inside(a.user, in));
    std::string user;
    if (UnescapeMailAuth(a.user, &user)) {
      std::string back;
      FUZZ_CHECK(UnescapeMailAuth(EscapeMailAuth(user), &back) && back == user);
    }
  }
  ParsedRequest q = ParseRequest(in);
  if (q.error == Error::kNone) {
    CheckHead(q, in);
    FUZZ_CHECK(Inside(q.method, in) && Inside(q.target, in));
    ParsedRequest cut = ParseRequest(in.substr(0, q.consumed));
    FUZZ_CHECK(cut.error == Error::kNone && cut.consumed == q.consumed);
  }
  return 0;
}
