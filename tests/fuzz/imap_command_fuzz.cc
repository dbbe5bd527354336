// Properties of the IMAP command parser (proto/imap/command_parser.h) on arbitrary
// bytes. The first byte picks a piece size and small limits (so every limit is reached);
// the rest is the client's stream. Checked: the events are the same whole and in
// pieces; no call consumes more than it was given; a command has a tag and a name and
// stays within the limits; literal arguments are exactly as long as announced; the
// parser always makes progress.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/imap/command_parser.h"
#include "tests/fuzz/fuzz.h"

using namespace ringproxy::imap;

namespace {

struct Seen {
  std::vector<std::string> events;
};

std::string Record(const CommandParser& p, const ParseResult& r, const CommandLimits& limits) {
  std::string out(1, static_cast<char>('0' + static_cast<int>(r.event)));
  if (r.event == Event::kError) {
    out += static_cast<char>('a' + static_cast<int>(r.error));
    out += p.tag();
    return out;
  }
  if (r.event == Event::kContinue) {
    FUZZ_CHECK(p.literal_bytes() <= limits.literal_bytes_max);
    return out + std::to_string(p.literal_bytes());
  }
  FUZZ_CHECK(!p.tag().empty() && !p.name().empty());
  FUZZ_CHECK(p.args().size() <= limits.args_max);
  FUZZ_CHECK(p.tag().size() + p.name().size() < limits.line_bytes_max);
  int depth = 0;
  out += p.tag();
  out += ' ';
  out += p.name();
  for (const Arg& a : p.args()) {
    if (a.kind == ArgKind::kListBegin) ++depth;
    if (a.kind == ArgKind::kListEnd) --depth;
    FUZZ_CHECK(depth >= 0 && static_cast<size_t>(depth) <= limits.list_depth_max);
    if (a.kind == ArgKind::kLiteral) FUZZ_CHECK(a.value.size() <= limits.literal_bytes_max);
    if (a.kind == ArgKind::kAtom) FUZZ_CHECK(!a.value.empty());
    out += ' ';
    out += static_cast<char>('0' + static_cast<int>(a.kind));
    out += std::to_string(a.value.size());
    out += ':';
    out += a.value;
  }
  FUZZ_CHECK(depth == 0);
  return out;
}

std::vector<std::string> Run(std::string_view in, size_t piece, const CommandLimits& limits) {
  CommandParser p(limits);
  std::vector<std::string> events;
  size_t calls = 0;
  for (size_t at = 0; at < in.size(); at += piece) {
    std::string_view chunk = in.substr(at, piece);
    for (;;) {
      ParseResult r = p.Parse(chunk);
      FUZZ_CHECK(r.consumed <= chunk.size());
      // Progress: an event that consumed nothing changes the state, so the calls are
      // bounded by the input.
      FUZZ_CHECK(++calls <= 3 * in.size() + 3);
      chunk.remove_prefix(r.consumed);
      if (r.event == Event::kNeedMore) {
        FUZZ_CHECK(chunk.empty());
        break;
      }
      events.push_back(Record(p, r, limits));
    }
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t knob = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  CommandLimits limits;
  if (knob & 0x80) {
    limits.line_bytes_max = 16 + (knob & 0x0f);
    limits.literal_bytes_max = knob & 0x0f;
    limits.args_max = 1 + (knob & 0x07);
    limits.list_depth_max = (knob >> 4) & 0x03;
  }
  const size_t piece = 1 + (knob & 0x0f);
  std::vector<std::string> whole = Run(in, in.size() == 0 ? 1 : in.size(), limits);
  FUZZ_CHECK(Run(in, piece, limits) == whole);
  FUZZ_CHECK(Run(in, 1, limits) == whole);
  return 0;
}
