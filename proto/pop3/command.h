// POP3 client commands (RFC 1939, RFC 2449, RFC 5034 AUTH, RFC 2595 STLS): one line,
// already cut by the session's BoundedReader, split into a keyword and arguments. Pure:
// no I/O, no allocation; the views point into the line.
//
// A keyword is 1 to 16 letters or digits (RFC 2449 keywords are 3 or 4; a longer word
// is still read, so the session can answer "-ERR invalid command" and not "-ERR bad
// syntax"). Arguments are separated by one or more spaces; the first kArgsMax are
// split out. `rest` is everything after
// the keyword and its first space, unsplit: PASS takes it whole, since a password may
// contain spaces (RFC 1939 §7).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ringproxy::pop3 {

inline constexpr size_t kArgsMax = 2;  // the most any pre-login command takes (AUTH, TOP)
inline constexpr size_t kKeywordBytesMax = 16;

enum class CommandError : uint8_t {
  kNone,
  kEmpty,         // an empty or all-space line
  kBadKeyword,    // not letters/digits, or too long
  kBadCharacter,  // a control character (NUL, CR, DEL, ...)
};

std::string_view CommandErrorName(CommandError e);

struct Command {
  std::string_view keyword;  // as sent; compare with KeywordIs
  std::array<std::string_view, kArgsMax> args{};
  size_t arg_count = 0;
  bool more_args = false;  // words beyond kArgsMax (an error for all but PASS)
  std::string_view rest;   // after the keyword and one space, as sent

  bool KeywordIs(std::string_view name) const;  // ASCII case-insensitive
};

CommandError ParseCommand(std::string_view line, Command* out);

}  // namespace ringproxy::pop3
