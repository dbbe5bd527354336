// IMAP client commands (RFC 9051 §9 grammar, the part a proxy reads before login): a
// pure, resumable byte state machine. Bytes in, events out; no I/O, no clock. The state
// lives in the parser, so a command may arrive in any number of pieces.
//
// What it reads: tag SP name [SP arguments] CRLF (a bare LF is accepted too), where an
// argument is an atom, a quoted string (backslash escapes only `"` and `\`), a literal
// `{n}` (synchronising: the parser stops with kContinue so the session can send "+")
// or `{n+}` (LITERAL+, no continuation), or a parenthesised list of those. Spaces
// between arguments may repeat. What it does not do: know commands or their
// arguments (the session does), decode SASL, or read anything after login.
//
// Arguments are copied into the parser's own buffer (a literal or a quoted string may
// span many reads), so the views returned stay valid until the next Parse call. The
// buffer is released at the start of the next command once it grew past a small size:
// an idle connection keeps no command text.
//
// A tag is ASTRING-CHAR except '+', at most kMaxTagBytes long.
//
// Errors: each limit and each syntax fault has its own code. An error is reported as
// soon as it is seen; the parser then skips to the end of that line (and over the data
// of a non-synchronising literal it refused) before it reads the next command.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringproxy::imap {

// A longer tag is refused (kBadTag), as spec/protocol-rules.md has it.
inline constexpr size_t kMaxTagBytes = 32;

struct CommandLimits {
  size_t line_bytes_max = 8192;     // one line of a command (literal data not counted)
  size_t literal_bytes_max = 8192;  // one literal's data
  // A whole command: its lines and its literals' data (the most an ID of RFC 2971's
  // limits needs, quoted, fits).
  size_t command_bytes_max = 32768;
  size_t args_max = 64;       // arguments, list openings and closings
  size_t list_depth_max = 8;  // nested parentheses
};

enum class ArgKind : uint8_t { kAtom, kQuoted, kLiteral, kListBegin, kListEnd };

struct Arg {
  ArgKind kind;
  std::string_view value;  // empty for kListBegin / kListEnd
};

enum class Event : uint8_t {
  kNeedMore,  // every byte given was used; feed more
  kCommand,   // a whole command: tag(), name(), args()
  kContinue,  // a synchronising literal of literal_bytes() is announced: send "+ ..."
  kError,     // error(); tag() if the tag was read
};

enum class Error : uint8_t {
  kNone,
  kLineTooLong,
  kLiteralTooLong,
  kCommandTooLong,  // its lines and literals together
  kTooManyArgs,
  kListTooDeep,
  kEmptyLine,       // CRLF alone
  kBadTag,          // empty or with a character a tag may not have
  kMissingCommand,  // a tag and nothing after it
  kBadCommandName,
  kBadCharacter,  // a control character, NUL, or a special where an atom goes
  kBadQuoted,     // a bad escape, or CR/LF/NUL inside quotes
  kBadLiteral,    // a malformed {n} header, or NUL inside the data
  kUnbalancedList,
};

// Text for logs ("line too long").
std::string_view ErrorName(Error e);

struct ParseResult {
  Event event = Event::kNeedMore;
  Error error = Error::kNone;
  size_t consumed = 0;  // bytes of the input used; the rest belongs to the next call
};

class CommandParser {
 public:
  explicit CommandParser(CommandLimits limits = {}) : limits_(limits) {}

  // Reads from `in` until an event; kNeedMore means all of `in` was used.
  ParseResult Parse(std::string_view in);

  // The last command's (or failed command's) parts; valid until the next Parse.
  std::string_view tag() const { return View(tag_); }
  std::string_view name() const { return View(name_); }
  std::span<const Arg> args() const { return views_; }

  // After kContinue: the size of the literal the client will send after "+".
  size_t literal_bytes() const { return literal_bytes_; }

  // True between commands (no partial command read, nothing being skipped).
  bool at_boundary() const { return state_ == State::kTagStart && skip_bytes_ == 0; }

  // Back to a command boundary, dropping anything partial (STARTTLS discards
  // pipelined plaintext).
  void Reset();

 private:
  enum class State : uint8_t {
    kTagStart,
    kTag,
    kNameStart,
    kName,
    kArgGap,  // after the name or an argument: SP, ')', CR, LF
    kArgStart,
    kAtom,
    kQuoted,
    kQuotedEscape,
    kLiteralDigits,
    kLiteralClose,  // after '+': expect '}'
    kLiteralEol,    // after '}': CR or LF
    kLiteralLf,     // after '}' CR: LF
    kLiteralData,
    kLf,  // after CR: LF
    kSkipLine,
    kSkipLiteral,
  };
  struct Span {
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  struct Item {
    ArgKind kind;
    Span span;
  };

  std::string_view View(Span s) const { return std::string_view(text_).substr(s.offset, s.size); }
  void StartCommand();
  void BeginSpan(Span* s) { s->offset = static_cast<uint32_t>(text_.size()); }
  void EndSpan(Span* s) { s->size = static_cast<uint32_t>(text_.size() - s->offset); }
  bool AddItem(ArgKind kind);  // false: too many
  void CloseArg();             // ends the open atom/quoted/literal span
  ParseResult Fail(Error e, size_t consumed, bool at_line_end);
  ParseResult Finish(size_t consumed);
  ParseResult EndLiteralHeader(size_t consumed);  // after '}': size limit, the item
  bool SkipLineByte(unsigned char c);             // true at the skipped line's end

  CommandLimits limits_;
  State state_ = State::kTagStart;
  std::string text_;
  std::vector<Item> items_;
  std::vector<Arg> views_;
  Span tag_;
  Span name_;
  size_t line_bytes_ = 0;
  size_t command_bytes_ = 0;  // the command's lines before this one, and their literals
  size_t depth_ = 0;
  uint64_t literal_bytes_ = 0;
  uint64_t literal_left_ = 0;
  bool literal_sync_ = false;
  uint64_t skip_bytes_ = 0;  // literal data to skip once the skipped line has ended
  // A skipped line's tail read as `{digits+}` CR? LF: its data is skipped as well.
  enum class SkipTail : uint8_t { kNone, kBrace, kDigits, kPlus, kClose, kCr };
  SkipTail skip_tail_ = SkipTail::kNone;
  uint64_t skip_announced_ = 0;
};

}  // namespace ringproxy::imap
