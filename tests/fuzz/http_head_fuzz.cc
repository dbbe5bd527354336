// Properties of the HTTP/1.x head parsers, the chunked decoder (proto/http/head.h),
// the user-route readers (proto/http/user_route.h) and path normalisation
// (proto/http/location.h) on arbitrary bytes: the outcome does not
// depend on how the bytes are split; a parsed head's views lie inside the input; what is accepted
// is unambiguous (one framing, a token method, a target without spaces, controls or a fragment, a
// Host on HTTP/1.1); an error always has a status and a reason.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/ascii.h"
#include "proto/http/head.h"
#include "proto/http/location.h"
#include "proto/http/user_route.h"
#include "tests/fuzz/fuzz.h"
#include "tests/proto/http/chunked_util.h"

using namespace ringproxy::http;

namespace {

ParseStatus ParseSplit(std::string_view text, size_t split, RequestParser* p, RequestHead* h) {
  ParseStatus s = p->Parse(text.substr(0, split), h);
  if (s != ParseStatus::kIncomplete) return s;
  return p->Parse(text, h);
}

std::string DecodeSplit(std::string_view text, size_t step, ChunkedDecoder* d) {
  size_t used = 0;
  return ringproxy::http::testing::DecodeInSteps(
      text, step, d, &used, [d](const ChunkedDecoder::Step& s, std::string_view in) {
        FUZZ_CHECK((s.consumed > 0 || d->failed()) && s.consumed <= in.size());
        FUZZ_CHECK(Inside(s.data, in));
      });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Limits limits;
  limits.head_bytes_max = 2048;
  limits.line_bytes_max = 512;
  limits.fields_max = 16;
  RequestParser whole(limits);
  RequestHead head;
  const ParseStatus s = whole.Parse(text, &head);
  RequestParser split(limits);
  RequestHead other;
  const ParseStatus s2 = ParseSplit(text, size / 2, &split, &other);
  FUZZ_CHECK(s == s2);
  FUZZ_CHECK(whole.error_status() == split.error_status());
  if (s == ParseStatus::kError) {
    FUZZ_CHECK(whole.error_status() >= 400 && !whole.error().empty());
  } else if (s == ParseStatus::kDone) {
    FUZZ_CHECK(whole.head_bytes() <= size && whole.head_bytes() == split.head_bytes());
    FUZZ_CHECK(Inside(head.method, text) && Inside(head.target, text) && Inside(head.host, text));
    FUZZ_CHECK(!head.method.empty() && !head.target.empty());
    for (char c : head.target) {
      FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f && c != '#');
    }
    if (head.version_minor == 1) FUZZ_CHECK(!head.host.empty());
    bool length = false;
    bool te = false;
    for (const Field& f : head.fields) {
      FUZZ_CHECK(Inside(f.name, text) && Inside(f.value, text) && !f.name.empty());
      for (char c : f.value) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
      length |= ringproxy::EqualsIgnoreCase(f.name, "content-length");
      te |= ringproxy::EqualsIgnoreCase(f.name, "transfer-encoding");
    }
    if (head.semantics.body == BodyKind::kChunked) {
      FUZZ_CHECK(te && !length && head.version_minor == 1);
    }
    if (head.semantics.body == BodyKind::kLength) FUZZ_CHECK(head.semantics.content_length > 0);
    for (bool admin : {false, true}) {
      const UserRoute r = FindUserRoute(head, head.target, admin);
      FUZZ_CHECK((r.by == RouteBy::kNone) == r.user.empty());
      for (char c : r.user) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    }
  }
  // Tokens straight from the bytes: never longer than their input, never a control.
  FUZZ_CHECK(AuthTokenId(text).size() <= size / 2);
  for (char c : JwtSubject(text)) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  (void)HasEncodedCrLf(text);
  // A normalised path is as normal as it gets (no second decoding, no dot segment left),
  // under the root, and its query is the one sent.
  std::string normal;
  if (NormalizePath(text, &normal) == PathForm::kNormalized) {
    std::string again;
    FUZZ_CHECK(NormalizePath(normal, &again) == PathForm::kUnchanged);
    FUZZ_CHECK(normal.starts_with('/'));
    const size_t q = text.find('?');
    FUZZ_CHECK(q == std::string_view::npos ? normal.find('?') == std::string::npos
                                           : normal.ends_with(text.substr(q)));
  }
  ResponseParser response(limits);
  ResponseHead rh;
  if (response.Parse(text, false, &rh) == ParseStatus::kDone) {
    FUZZ_CHECK(rh.status >= 100 && rh.status <= 599);
    if (rh.status == 204 || rh.status == 304) FUZZ_CHECK(rh.semantics.body == BodyKind::kNone);
  }
  ChunkedDecoder one(64, 256);
  ChunkedDecoder bytes(64, 256);
  const std::string a = DecodeSplit(text, size == 0 ? 1 : size, &one);
  const std::string b = DecodeSplit(text, 1, &bytes);
  FUZZ_CHECK(one.done() == bytes.done() && one.failed() == bytes.failed());
  if (!one.failed()) FUZZ_CHECK(a == b && one.body_bytes() == a.size());
  return 0;
}
