#include "proto/pop3/command.h"

#include "core/ascii.h"

namespace ringproxy::pop3 {

namespace {

bool IsKeywordChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

}  // namespace

std::string_view CommandErrorName(CommandError e) {
  switch (e) {
    case CommandError::kNone:
      return "none";
    case CommandError::kEmpty:
      return "empty command";
    case CommandError::kBadKeyword:
      return "bad keyword";
    case CommandError::kBadCharacter:
      return "bad character";
  }
  return "unknown";
}

bool Command::KeywordIs(std::string_view name) const { return EqualsIgnoreCase(keyword, name); }

CommandError ParseCommand(std::string_view line, Command* out) {
  *out = Command{};
  // A password is the rest of its line: only NUL and CR are refused in it (LoginFits
  // checks again), as IMAP takes any of them in a quoted string or a literal.
  const bool pass = StartsWithIgnoreCase(line, "PASS ");
  const size_t checked = pass ? 5 : line.size();
  for (size_t k = 0; k < line.size(); ++k) {
    const auto c = static_cast<unsigned char>(line[k]);
    // Tabs are controls too: RFC 1939 separates with single spaces.
    if (k < checked ? IsControl(c) : (c == 0 || c == '\r')) return CommandError::kBadCharacter;
  }
  size_t i = 0;
  while (i < line.size() && line[i] == ' ') ++i;
  if (i == line.size()) return CommandError::kEmpty;
  if (i > 0) return CommandError::kBadKeyword;  // a keyword starts the line
  while (i < line.size() && line[i] != ' ') {
    if (!IsKeywordChar(line[i])) return CommandError::kBadKeyword;
    ++i;
  }
  if (i > kKeywordBytesMax) return CommandError::kBadKeyword;
  out->keyword = line.substr(0, i);
  if (i == line.size()) return CommandError::kNone;
  out->rest = line.substr(i + 1);
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i == line.size()) break;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (out->arg_count == kArgsMax) {
      out->more_args = true;
      break;
    }
    out->args[out->arg_count++] = line.substr(start, i - start);
  }
  return CommandError::kNone;
}

}  // namespace ringproxy::pop3
