#include "proto/imap/command_parser.h"

#include <algorithm>
#include <cstring>

namespace ringproxy::imap {

namespace {

// Larger buffers are given back when the next command starts.
constexpr size_t kKeepBytes = 1024;
constexpr size_t kKeepItems = 32;
constexpr uint64_t kLiteralSizeMax = 9'223'372'036'854'775'807;  // number64 (RFC 9051)

bool IsSpecial(unsigned char c) { return c == '(' || c == ')' || c == '{' || c == '"'; }

// ATOM-CHAR plus the resp-specials and list wildcards a flag or pattern may carry, and
// 8-bit bytes (some clients send UTF-8 user names unquoted).
bool IsAtomChar(unsigned char c) { return c > 0x20 && c != 0x7f && !IsSpecial(c); }

// A tag is ASTRING-CHAR except '+' (RFC 9051 `tag`).
bool IsTagChar(unsigned char c) {
  return c > 0x20 && c < 0x7f && !IsSpecial(c) && c != '%' && c != '*' && c != '\\' && c != '+';
}

bool IsNameChar(unsigned char c) { return c > 0x20 && c < 0x7f && !IsSpecial(c) && c != '\\'; }

}  // namespace

std::string_view ErrorName(Error e) {
  switch (e) {
    case Error::kNone:
      return "none";
    case Error::kLineTooLong:
      return "line too long";
    case Error::kLiteralTooLong:
      return "literal too long";
    case Error::kCommandTooLong:
      return "command too long";
    case Error::kTooManyArgs:
      return "too many arguments";
    case Error::kListTooDeep:
      return "lists nested too deep";
    case Error::kEmptyLine:
      return "empty line";
    case Error::kBadTag:
      return "bad tag";
    case Error::kMissingCommand:
      return "missing command";
    case Error::kBadCommandName:
      return "bad command name";
    case Error::kBadCharacter:
      return "bad character";
    case Error::kBadQuoted:
      return "bad quoted string";
    case Error::kBadLiteral:
      return "bad literal";
    case Error::kUnbalancedList:
      return "unbalanced parentheses";
  }
  return "unknown";
}

void CommandParser::Reset() {
  state_ = State::kTagStart;
  skip_bytes_ = 0;
  skip_tail_ = SkipTail::kNone;
  skip_announced_ = 0;
  literal_left_ = 0;
  StartCommand();
}

void CommandParser::StartCommand() {
  if (text_.capacity() > kKeepBytes) {
    std::string().swap(text_);
  } else {
    text_.clear();
  }
  if (items_.capacity() > kKeepItems) {
    std::vector<Item>().swap(items_);
    std::vector<Arg>().swap(views_);
  } else {
    items_.clear();
    views_.clear();
  }
  tag_ = Span{};
  name_ = Span{};
  line_bytes_ = 0;
  command_bytes_ = 0;
  depth_ = 0;
  literal_bytes_ = 0;
}

bool CommandParser::AddItem(ArgKind kind) {
  if (items_.size() >= limits_.args_max) return false;
  Item item{kind, {}};
  BeginSpan(&item.span);
  items_.push_back(item);
  return true;
}

void CommandParser::CloseArg() { EndSpan(&items_.back().span); }

ParseResult CommandParser::Fail(Error e, size_t consumed, bool at_line_end) {
  if (!at_line_end) {
    state_ = State::kSkipLine;
  } else {
    state_ = skip_bytes_ > 0 ? State::kSkipLiteral : State::kTagStart;
  }
  return {Event::kError, e, consumed};
}

bool CommandParser::SkipLineByte(unsigned char c) {
  using T = SkipTail;
  if (c == '\n') {
    if (skip_tail_ == T::kClose || skip_tail_ == T::kCr) skip_bytes_ = skip_announced_;
    skip_tail_ = T::kNone;
    return true;
  }
  if (c == '{') {
    skip_tail_ = T::kBrace;
    skip_announced_ = 0;
  } else if ((skip_tail_ == T::kBrace || skip_tail_ == T::kDigits) && c >= '0' && c <= '9') {
    skip_tail_ = T::kDigits;
    // Saturates: an absurd length skips until the connection's limits end it.
    skip_announced_ = skip_announced_ > UINT64_MAX / 10 ? UINT64_MAX : skip_announced_ * 10;
    skip_announced_ = std::min<uint64_t>(skip_announced_, UINT64_MAX - (c - '0')) + (c - '0');
  } else if (skip_tail_ == T::kDigits && c == '+') {
    skip_tail_ = T::kPlus;
  } else if (skip_tail_ == T::kPlus && c == '}') {
    skip_tail_ = T::kClose;
  } else if (skip_tail_ == T::kClose && c == '\r') {
    skip_tail_ = T::kCr;
  } else {
    skip_tail_ = T::kNone;
  }
  return false;
}

ParseResult CommandParser::Finish(size_t consumed) {
  if (depth_ != 0) return Fail(Error::kUnbalancedList, consumed, true);
  views_.clear();
  views_.reserve(items_.size());
  for (const Item& item : items_) views_.push_back(Arg{item.kind, View(item.span)});
  state_ = State::kTagStart;
  return {Event::kCommand, Error::kNone, consumed};
}

ParseResult CommandParser::EndLiteralHeader(size_t consumed) {
  // A refused {n+} literal still arrives: its data is skipped after the line ends.
  const uint64_t skip = literal_sync_ ? 0 : literal_bytes_;
  if (literal_bytes_ > limits_.literal_bytes_max) {
    skip_bytes_ = skip;
    return Fail(Error::kLiteralTooLong, consumed, false);
  }
  if (command_bytes_ + line_bytes_ + literal_bytes_ > limits_.command_bytes_max) {
    skip_bytes_ = skip;
    return Fail(Error::kCommandTooLong, consumed, false);
  }
  if (!AddItem(ArgKind::kLiteral)) {
    skip_bytes_ = skip;
    return Fail(Error::kTooManyArgs, consumed, false);
  }
  return {Event::kNeedMore, Error::kNone, consumed};
}

// One protocol switch: each state reads one byte (or a run of literal or skipped data).
// A byte that ends a token is handled again in the next state without being consumed.
ParseResult CommandParser::Parse(std::string_view in) {
  size_t i = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(in.data());
  while (i < in.size()) {
    const unsigned char c = data[i];
    const bool in_line = state_ != State::kLiteralData && state_ != State::kSkipLine &&
                         state_ != State::kSkipLiteral;
    if (in_line && state_ != State::kTagStart) {
      if (line_bytes_ >= limits_.line_bytes_max) return Fail(Error::kLineTooLong, i, false);
      if (command_bytes_ + line_bytes_ >= limits_.command_bytes_max) {
        return Fail(Error::kCommandTooLong, i, false);
      }
    }
    const bool eol = c == '\n';
    switch (state_) {
      case State::kTagStart:
        StartCommand();
        if (!IsTagChar(c)) {
          if (c == '\r' || c == '\n') return Fail(Error::kEmptyLine, i + 1, eol);
          return Fail(Error::kBadTag, i + 1, false);
        }
        BeginSpan(&tag_);
        text_.push_back(static_cast<char>(c));
        state_ = State::kTag;
        break;
      case State::kTag:
        if (IsTagChar(c)) {
          // The upstream login sends the tag on (plus ".ID"): Dovecot refuses one over
          // 126 bytes without a tag, and the login would wait for the tagged reply.
          if (text_.size() - tag_.offset >= kMaxTagBytes) return Fail(Error::kBadTag, i + 1, false);
          text_.push_back(static_cast<char>(c));
        } else if (c == ' ') {
          EndSpan(&tag_);
          state_ = State::kNameStart;
        } else if (c == '\r' || c == '\n') {
          EndSpan(&tag_);
          return Fail(Error::kMissingCommand, i + 1, eol);
        } else {
          return Fail(Error::kBadTag, i + 1, false);
        }
        break;
      case State::kNameStart:
        if (IsNameChar(c)) {
          BeginSpan(&name_);
          text_.push_back(static_cast<char>(c));
          state_ = State::kName;
        } else if (c == '\r' || c == '\n') {
          return Fail(Error::kMissingCommand, i + 1, eol);
        } else if (c != ' ') {
          return Fail(Error::kBadCommandName, i + 1, false);
        }
        break;
      case State::kName:
        if (IsNameChar(c)) {
          text_.push_back(static_cast<char>(c));
          break;
        }
        if (c != ' ' && c != '\r' && c != '\n') return Fail(Error::kBadCommandName, i + 1, false);
        EndSpan(&name_);
        state_ = State::kArgGap;
        continue;  // the separator again, in kArgGap
      case State::kArgGap:
        if (c == ' ') {
          state_ = State::kArgStart;
        } else if (c == ')') {
          if (depth_ == 0) return Fail(Error::kUnbalancedList, i + 1, false);
          if (!AddItem(ArgKind::kListEnd)) return Fail(Error::kTooManyArgs, i + 1, false);
          --depth_;
        } else if (c == '\r') {
          state_ = State::kLf;
        } else if (c == '\n') {
          ++line_bytes_;
          return Finish(i + 1);
        } else {
          return Fail(Error::kBadCharacter, i + 1, false);
        }
        break;
      case State::kArgStart:
        if (c == ' ') break;
        if (c == '\r' || c == '\n' || c == ')') {
          state_ = State::kArgGap;
          continue;
        }
        if (c == '(') {
          if (depth_ >= limits_.list_depth_max) return Fail(Error::kListTooDeep, i + 1, false);
          if (!AddItem(ArgKind::kListBegin)) return Fail(Error::kTooManyArgs, i + 1, false);
          ++depth_;
          break;
        }
        if (c == '"') {
          if (!AddItem(ArgKind::kQuoted)) return Fail(Error::kTooManyArgs, i + 1, false);
          state_ = State::kQuoted;
          break;
        }
        if (c == '{') {
          literal_bytes_ = 0;
          literal_left_ = 0;  // digits read so far, until the header is done
          state_ = State::kLiteralDigits;
          break;
        }
        if (!IsAtomChar(c)) return Fail(Error::kBadCharacter, i + 1, false);
        if (!AddItem(ArgKind::kAtom)) return Fail(Error::kTooManyArgs, i + 1, false);
        text_.push_back(static_cast<char>(c));
        state_ = State::kAtom;
        break;
      case State::kAtom:
        if (IsAtomChar(c)) {
          text_.push_back(static_cast<char>(c));
          break;
        }
        CloseArg();
        state_ = State::kArgGap;
        continue;
      case State::kQuoted:
        if (c == '"') {
          CloseArg();
          state_ = State::kArgGap;
        } else if (c == '\\') {
          state_ = State::kQuotedEscape;
        } else if (c == '\r' || c == '\n' || c == 0) {
          return Fail(Error::kBadQuoted, i + 1, eol);
        } else {
          text_.push_back(static_cast<char>(c));
        }
        break;
      case State::kQuotedEscape:
        if (c != '"' && c != '\\') return Fail(Error::kBadQuoted, i + 1, eol);
        text_.push_back(static_cast<char>(c));
        state_ = State::kQuoted;
        break;
      case State::kLiteralDigits:
        if (c >= '0' && c <= '9') {
          // Bounded by value, not digit count: leading zeros are digits too (1*DIGIT).
          const auto digit = static_cast<uint64_t>(c - '0');
          if (literal_bytes_ > (kLiteralSizeMax - digit) / 10) {
            return Fail(Error::kBadLiteral, i + 1, false);
          }
          ++literal_left_;
          literal_bytes_ = literal_bytes_ * 10 + digit;
        } else if ((c == '+' || c == '}') && literal_left_ > 0) {
          literal_sync_ = c == '}';
          state_ = c == '+' ? State::kLiteralClose : State::kLiteralEol;
          if (c == '}') {
            ++line_bytes_;
            ++i;
            ParseResult r = EndLiteralHeader(i);
            if (r.event != Event::kNeedMore) return r;
            continue;
          }
        } else {
          return Fail(Error::kBadLiteral, i + 1, eol);
        }
        break;
      case State::kLiteralClose:
        if (c != '}') return Fail(Error::kBadLiteral, i + 1, eol);
        ++line_bytes_;
        ++i;
        {
          ParseResult r = EndLiteralHeader(i);
          if (r.event != Event::kNeedMore) return r;
        }
        state_ = State::kLiteralEol;
        continue;
      case State::kLiteralEol:
        if (c == '\r') {
          state_ = State::kLiteralLf;
          break;
        }
        [[fallthrough]];
      case State::kLiteralLf:
        if (c != '\n') return Fail(Error::kBadLiteral, i + 1, false);
        ++i;
        command_bytes_ += line_bytes_ + literal_bytes_;
        line_bytes_ = 0;  // the line after the literal is a new line
        literal_left_ = literal_bytes_;
        state_ = State::kLiteralData;
        if (literal_sync_) return {Event::kContinue, Error::kNone, i};
        continue;
      case State::kLiteralData: {
        const size_t n = static_cast<size_t>(
            std::min<uint64_t>(literal_left_, static_cast<uint64_t>(in.size() - i)));
        const void* nul = n > 0 ? std::memchr(data + i, 0, n) : nullptr;
        if (nul != nullptr) {
          const size_t at = static_cast<size_t>(static_cast<const unsigned char*>(nul) - data);
          skip_bytes_ = literal_left_ - (at + 1 - i);
          literal_left_ = 0;
          // The rest of the literal (if any), then the rest of its line.
          return Fail(Error::kBadLiteral, at + 1, skip_bytes_ > 0);
        }
        text_.append(in.data() + i, n);
        literal_left_ -= n;
        i += n;
        if (literal_left_ == 0) {
          CloseArg();
          state_ = State::kArgGap;
        }
        continue;
      }
      case State::kLf:
        if (c != '\n') return Fail(Error::kBadCharacter, i + 1, false);
        ++line_bytes_;
        return Finish(i + 1);
      case State::kSkipLine: {
        // Byte by byte (an error's path): a non-synchronising literal announced at the
        // line's end arrives anyway, and its data must not be read as commands.
        bool ended = false;
        while (i < in.size() && !ended) {
          ended = SkipLineByte(data[i]);
          ++i;
        }
        if (ended) state_ = skip_bytes_ > 0 ? State::kSkipLiteral : State::kTagStart;
        continue;
      }
      case State::kSkipLiteral: {
        const size_t n = static_cast<size_t>(
            std::min<uint64_t>(skip_bytes_, static_cast<uint64_t>(in.size() - i)));
        i += n;
        skip_bytes_ -= n;
        if (skip_bytes_ == 0) state_ = State::kSkipLine;
        continue;
      }
    }
    ++i;
    ++line_bytes_;
  }
  // A literal announced with no data (`{0}`) is complete without another byte.
  if (state_ == State::kLiteralData && literal_left_ == 0) {
    CloseArg();
    state_ = State::kArgGap;
  }
  return {Event::kNeedMore, Error::kNone, in.size()};
}

}  // namespace ringproxy::imap
