// Properties of the POP3 command splitter (proto/pop3/command.h) on arbitrary lines:
// a parsed command's views all lie inside the line, in order; the keyword is 1..16
// letters or digits; arguments hold no space; `rest` is the line after the keyword and
// one space; a line with a control character is refused, except in a PASS line's
// password, where only NUL and CR are.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/pop3/command.h"
#include "tests/fuzz/fuzz.h"

using namespace ringproxy::pop3;

namespace {

bool Inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  Command c;
  CommandError e = ParseCommand(line, &c);
  const bool pass = line.size() >= 5 && (line[0] | 0x20) == 'p' && (line[1] | 0x20) == 'a' &&
                    (line[2] | 0x20) == 's' && (line[3] | 0x20) == 's' && line[4] == ' ';
  bool control = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const auto ch = static_cast<unsigned char>(line[i]);
    const bool refused = pass && i >= 5 ? (ch == 0 || ch == '\r') : (ch < 0x20 || ch == 0x7f);
    control = control || refused;
  }
  if (control) FUZZ_CHECK(e != CommandError::kNone);
  if (e != CommandError::kNone) return 0;
  FUZZ_CHECK(!c.keyword.empty() && c.keyword.size() <= kKeywordBytesMax);
  for (char ch : c.keyword) FUZZ_CHECK(std::isalnum(static_cast<unsigned char>(ch)));
  FUZZ_CHECK(Inside(c.keyword, line) && Inside(c.rest, line));
  FUZZ_CHECK(c.arg_count <= kArgsMax);
  const char* last = c.keyword.data() + c.keyword.size();
  for (size_t i = 0; i < c.arg_count; ++i) {
    FUZZ_CHECK(!c.args[i].empty() && Inside(c.args[i], line));
    FUZZ_CHECK(c.args[i].find(' ') == std::string_view::npos);
    FUZZ_CHECK(c.args[i].data() >= last);
    last = c.args[i].data() + c.args[i].size();
  }
  FUZZ_CHECK(c.KeywordIs(c.keyword));
  return 0;
}
