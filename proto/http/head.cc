#include "proto/http/head.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "core/ascii.h"

namespace ringproxy::http {

namespace {

// RFC 9110 §5.6.2 tchar.
constexpr bool IsTchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[static_cast<size_t>(c)] = IsTchar(static_cast<unsigned char>(c));
  return t;
}();

constexpr bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!kTchar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

// A field value's octets (RFC 9110 §5.5): VCHAR, obs-text, SP and HTAB; no other
// control, so no NUL, bare CR or LF.
constexpr bool IsFieldValueChar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

// Every octet of `v` may be in a field value. Eight at a time: a word with no octet
// below 0x20 and no DEL is clean (the usual case); one that has one (perhaps a tab)
// is judged an octet at a time.
bool IsFieldValue(std::string_view v) {
  constexpr uint64_t kOnes = 0x0101010101010101;
  constexpr uint64_t kHigh = 0x8080808080808080;
  const char* p = v.data();
  size_t n = v.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    const uint64_t below_space = (x - kOnes * 0x20) & ~x & kHigh;
    const uint64_t d = x ^ (kOnes * 0x7f);
    const uint64_t del = (d - kOnes) & ~d & kHigh;
    if ((below_space | del) == 0) continue;
    for (int k = 0; k < 8; ++k) {
      if (!IsFieldValueChar(static_cast<unsigned char>(p[k]))) return false;
    }
  }
  for (; n > 0; ++p, --n) {
    if (!IsFieldValueChar(static_cast<unsigned char>(*p))) return false;
  }
  return true;
}

// 1*DIGIT without overflow; false for anything else.
bool ParseDecimal(std::string_view s, uint64_t* out) {
  // 18 digits always fit in 63 bits (19 may not): a length is also read as an int64_t.
  if (s.empty() || s.size() > 18) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

// "HTTP/1.x": the minor version (a higher one reads as 1); -1: not HTTP/1.
// `*major_other`: an HTTP-version of another major (2.0, 0.9), which servers answer
// with 505.
int ParseVersion(std::string_view v, bool* major_other) {
  *major_other = false;
  if (v.size() != 8 || !v.starts_with("HTTP/") || v[6] != '.') return -1;
  const char major = v[5];
  const char minor = v[7];
  if (major < '0' || major > '9' || minor < '0' || minor > '9') return -1;
  if (major != '1') {
    *major_other = true;
    return -1;
  }
  return minor == '0' ? 0 : 1;
}

// Host (RFC 9110 §7.2; RFC 3986 authority without userinfo): a reg-name, IPv4 or
// bracketed IP literal, then an optional ":" port of digits.
bool IsValidHost(std::string_view host) {
  if (host.empty()) return false;
  std::string_view name = host;
  std::string_view port;
  if (host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : host.substr(1, close - 1)) {
      if (HexDigitValue(c) < 0 && c != ':' && c != '.') return false;
    }
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
    }
    name = {};
  } else {
    const size_t colon = host.rfind(':');
    if (colon != std::string_view::npos) {
      name = host.substr(0, colon);
      port = host.substr(colon + 1);
      if (name.empty()) return false;
    }
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const auto u = static_cast<unsigned char>(c);
    const bool unreserved = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                            (u >= '0' && u <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    const bool sub_delim = c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' ||
                           c == '*' || c == '+' || c == ',' || c == ';' || c == '=';
    if (c == '%') {  // pct-encoded: two hex digits (RFC 3986 §2.1)
      if (i + 2 >= name.size() || HexDigitValue(name[i + 1]) < 0 ||
          HexDigitValue(name[i + 2]) < 0) {
        return false;
      }
      i += 2;
      continue;
    }
    if (!unreserved && !sub_delim) return false;
  }
  if (port.size() > 5) return false;
  uint32_t number = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    number = number * 10 + static_cast<uint32_t>(c - '0');
  }
  return number <= 65535;
}

// Splits the head's field lines (after the start line) into `fields`; the head's lines
// all end in CR LF (the scanner checked). Returns a static reason, or "" when valid.
std::string_view ParseFields(std::string_view lines, const Limits& limits,
                             std::vector<Field>* fields) {
  fields->clear();
  while (!lines.empty()) {
    const size_t end = lines.find("\r\n");
    const std::string_view line = lines.substr(0, end);
    lines.remove_prefix(end + 2);
    if (line.empty()) break;  // the blank line that ends the head
    if (line.front() == ' ' || line.front() == '\t') return "obs-fold (a folded field line)";
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return "a field line without a colon";
    const std::string_view name = line.substr(0, colon);
    if (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
      return "whitespace between a field name and its colon";
    }
    if (!IsToken(name)) return "a bad field name";
    std::string_view value = line.substr(colon + 1);
    if (!IsFieldValue(value)) return "a control character in a field";
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (fields->size() >= limits.fields_max) return "too many fields";
    fields->push_back({name, value});
  }
  return "";
}

// Framing and connection semantics from the fields. Returns a static reason (and
// `*not_implemented` for a transfer coding other than chunked), or "" when valid.
std::string_view ReadSemantics(const std::vector<Field>& fields, int version_minor, Semantics* s,
                               bool* not_implemented) {
  *not_implemented = false;
  bool have_length = false;
  uint64_t length = 0;
  bool have_te = false;
  bool chunked_last = false;
  int chunked_count = 0;
  bool other_coding = false;
  bool bad_coding = false;
  bool close = false;
  bool keep_alive = false;
  for (const Field& f : fields) {
    if (EqualsIgnoreCase(f.name, "content-length")) {
      // A list of identical values may be collapsed (RFC 9112 §6.3); anything else is
      // an ambiguity some hop would resolve differently.
      std::string_view bad;
      bool any = false;
      ForEachListElement(f.value, [&](std::string_view element) {
        any = true;
        uint64_t v = 0;
        if (!ParseDecimal(element, &v)) {
          bad = "a bad Content-Length";
        } else if (have_length && v != length) {
          bad = "Content-Length values that differ";
        } else {
          have_length = true;
          length = v;
        }
      });
      if (!any) return "an empty Content-Length";
      if (!bad.empty()) return bad;
    } else if (EqualsIgnoreCase(f.name, "transfer-encoding")) {
      have_te = true;
      bool any = false;
      ForEachListElement(f.value, [&](std::string_view coding) {
        any = true;
        const bool chunked = EqualsIgnoreCase(coding, "chunked");
        if (chunked) {
          ++chunked_count;
        } else if (IsToken(coding.substr(0, coding.find(';')))) {
          other_coding = true;
        } else {
          bad_coding = true;
        }
        chunked_last = chunked;
      });
      if (!any) return "an empty Transfer-Encoding";
      if (bad_coding) return "a bad transfer coding";
    } else if (EqualsIgnoreCase(f.name, "connection")) {
      ForEachListElement(f.value, [&](std::string_view option) {
        if (EqualsIgnoreCase(option, "close")) close = true;
        if (EqualsIgnoreCase(option, "keep-alive")) keep_alive = true;
        if (EqualsIgnoreCase(option, "upgrade")) s->connection_upgrade = true;
      });
    } else if (EqualsIgnoreCase(f.name, "upgrade")) {
      if (!s->upgrade.empty()) s->upgrade_repeated = true;
      s->upgrade = f.value;
    }
  }
  if (have_te) {
    if (version_minor == 0) return "Transfer-Encoding in an HTTP/1.0 message";
    if (have_length) return "both Content-Length and Transfer-Encoding";
    if (chunked_count > 1) return "chunked applied more than once";
    if (!chunked_last) return "a Transfer-Encoding whose last coding is not chunked";
    if (other_coding) {
      *not_implemented = true;
      return "a transfer coding other than chunked";
    }
    s->body = BodyKind::kChunked;
  } else if (have_length) {
    s->length_field = true;
    s->content_length = length;
    s->body = length > 0 ? BodyKind::kLength : BodyKind::kNone;
  }
  s->keep_alive = version_minor >= 1 ? !close : (keep_alive && !close);
  return "";
}

}  // namespace

bool IsFieldName(std::string_view name) { return IsToken(name); }

bool IsCleanFieldValue(std::string_view value) {
  if (!value.empty() && (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' ||
                         value.back() == '\t')) {
    return false;
  }
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return IsFieldValueChar(static_cast<unsigned char>(c)); });
}

void HeadScanner::Reset() {
  scanned_ = 0;
  line_start_ = 0;
  leading_ = 0;
  lines_ = 0;
  end_ = 0;
  error_status_ = 0;
  error_ = {};
}

ParseStatus HeadScanner::Fail(int status, std::string_view reason) {
  error_status_ = status;
  error_ = reason;
  return ParseStatus::kError;
}

ParseStatus HeadScanner::Scan(std::string_view buffer, bool request) {
  if (error_status_ != 0) return ParseStatus::kError;
  if (end_ != 0) return ParseStatus::kDone;
  constexpr size_t kLeadingLinesMax = 4;
  // Each byte is judged as if one at a time, in order, so the first fault decides the
  // status however the bytes were split; an endless line or head fails at its limit,
  // not at the connection's deadline. memchr finds the next LF and any CR before it,
  // and the limits give the first byte each would fail at: no loop per byte.
  const char* const data = buffer.data();
  const size_t n = buffer.size();
  size_t i = scanned_;
  while (i < n) {
    const auto* lf = static_cast<const char*>(std::memchr(data + i, '\n', n - i));
    const size_t seg_end = lf != nullptr ? static_cast<size_t>(lf - data) : n;
    // The first byte past the head limit (leading empty lines do not count).
    const size_t head_at = limits_.head_bytes_max + leading_ * 2;
    // Bytes [i, seg_end) are not LF. The first over the line limit (past it and its CR),
    const size_t line_at = line_start_ + limits_.line_bytes_max + 1;
    // and the first that follows a CR in its line (a CR must be the line's end: CR LF).
    size_t cr_at = std::numeric_limits<size_t>::max();
    const size_t cr_from = std::max(i, line_start_ + 1) - 1;
    if (seg_end > cr_from + 1) {
      const auto* cr =
          static_cast<const char*>(std::memchr(data + cr_from, '\r', seg_end - 1 - cr_from));
      if (cr != nullptr) cr_at = static_cast<size_t>(cr - data) + 1;
    }
    const size_t fault = std::min({head_at, line_at, cr_at});
    if (fault < seg_end) {
      if (fault == head_at) return Fail(431, "a head over the limit");
      if (fault == cr_at) return Fail(400, "a bare CR");
      return Fail(lines_ == 0 && request ? 414 : 431, "a line over the limit");
    }
    if (lf == nullptr) break;
    i = seg_end;  // the LF
    if (i >= head_at) return Fail(431, "a head over the limit");
    if (i == line_start_ || data[i - 1] != '\r') return Fail(400, "a bare LF");
    const size_t line_bytes = i - 1 - line_start_;
    line_start_ = ++i;
    if (line_bytes == 0) {
      if (lines_ == 0) {
        // Empty lines before a request line are skipped (RFC 9112 §2.2), a few.
        if (!request || ++leading_ > kLeadingLinesMax) {
          return Fail(400, "empty lines before the start line");
        }
        continue;
      }
      end_ = i;
      scanned_ = end_;
      return ParseStatus::kDone;
    }
    ++lines_;
    if (lines_ > limits_.fields_max + 1) return Fail(431, "too many fields");
  }
  scanned_ = n;
  return ParseStatus::kIncomplete;
}

void RequestParser::Reset() {
  scanner_.Reset();
  error_status_ = 0;
  error_ = {};
}

ParseStatus RequestParser::Fail(int status, std::string_view reason) {
  error_status_ = status;
  error_ = reason;
  return ParseStatus::kError;
}

ParseStatus RequestParser::Parse(std::string_view buffer, RequestHead* out) {
  if (error_status_ != 0) return ParseStatus::kError;
  const ParseStatus scanned = scanner_.Scan(buffer, /*request=*/true);
  if (scanned == ParseStatus::kError) return Fail(scanner_.error_status(), scanner_.error());
  if (scanned == ParseStatus::kIncomplete) return scanned;
  std::string_view head = buffer.substr(scanner_.leading_bytes() * 2,
                                        scanner_.head_bytes() - scanner_.leading_bytes() * 2);
  const size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  // method SP request-target SP HTTP-version, single spaces (RFC 9112 §3).
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Fail(400, "a request line without a target");
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos)
    return Fail(400, "a request line without a version (HTTP/0.9)");
  if (line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(400, "whitespace in the request target");
  }
  out->method = line.substr(0, sp1);
  out->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!IsToken(out->method)) return Fail(400, "a bad method");
  if (out->target.empty()) return Fail(400, "an empty request target");
  for (char c : out->target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f)
      return Fail(400, "a control, space or non-ASCII byte in the target");
    // A fragment is the client's alone: no request-target form has one (RFC 9112 §3.2).
    if (c == '#') return Fail(400, "a fragment in the request target");
  }
  bool major_other = false;
  const int minor = ParseVersion(line.substr(sp2 + 1), &major_other);
  if (minor < 0) {
    return major_other ? Fail(505, "an HTTP version other than 1.x")
                       : Fail(400, "a bad HTTP version");
  }
  out->version_minor = minor;
  // The target's form (RFC 9112 §3.2).
  out->authority = {};
  const bool connect = out->method == "CONNECT";
  if (out->target.front() == '/') {
    if (connect) return Fail(400, "CONNECT needs an authority-form target");
  } else if (out->target == "*") {
    if (out->method != "OPTIONS")
      return Fail(400, "an asterisk target on a method other than OPTIONS");
  } else if (connect) {
    if (!IsValidHost(out->target) || out->target.find(':') == std::string_view::npos) {
      return Fail(400, "a bad CONNECT authority");
    }
    out->authority = out->target;
  } else {
    const size_t scheme_end = out->target.find("://");
    if (scheme_end == std::string_view::npos) return Fail(400, "a bad request target");
    const std::string_view scheme = out->target.substr(0, scheme_end);
    if (!EqualsIgnoreCase(scheme, "http") && !EqualsIgnoreCase(scheme, "https")) {
      return Fail(400, "an absolute target that is not http or https");
    }
    std::string_view rest = out->target.substr(scheme_end + 3);
    out->authority = rest.substr(0, rest.find_first_of("/?#"));
    if (out->authority.find('@') != std::string_view::npos || !IsValidHost(out->authority)) {
      return Fail(400, "a bad authority in the target");
    }
  }
  std::string_view reason = ParseFields(head.substr(line_end + 2), scanner_.limits(), &out->fields);
  if (!reason.empty()) {
    return Fail(reason == "too many fields" ? 431 : 400, reason);
  }
  // Host: exactly one on HTTP/1.1, valid when present (RFC 9112 §3.2).
  int hosts = 0;
  out->host = {};
  out->expect_continue = false;
  out->expect_other = false;
  for (const Field& f : out->fields) {
    if (EqualsIgnoreCase(f.name, "host")) {
      ++hosts;
      out->host = f.value;
    } else if (EqualsIgnoreCase(f.name, "expect")) {
      if (EqualsIgnoreCase(f.value, "100-continue")) {
        // Ignored from an HTTP/1.0 client, which cannot take a 1xx (RFC 9110 §10.1.1).
        out->expect_continue = minor >= 1;
      } else {
        out->expect_other = true;
      }
    }
  }
  if (hosts > 1) return Fail(400, "more than one Host");
  if (hosts == 0 && minor >= 1) return Fail(400, "no Host in an HTTP/1.1 request");
  if (hosts == 1 && !IsValidHost(out->host)) return Fail(400, "an invalid Host");
  if (!out->authority.empty()) out->host = out->authority;  // the target's authority wins
  out->semantics = Semantics();
  bool not_implemented = false;
  reason = ReadSemantics(out->fields, minor, &out->semantics, &not_implemented);
  if (!reason.empty()) return Fail(not_implemented ? 501 : 400, reason);
  return ParseStatus::kDone;
}

void ResponseParser::Reset() {
  scanner_.Reset();
  error_ = {};
}

ParseStatus ResponseParser::Fail(std::string_view reason) {
  error_ = reason;
  return ParseStatus::kError;
}

ParseStatus ResponseParser::Parse(std::string_view buffer, bool head_request, ResponseHead* out) {
  if (!error_.empty()) return ParseStatus::kError;
  const ParseStatus scanned = scanner_.Scan(buffer, /*request=*/false);
  if (scanned == ParseStatus::kError) return Fail(scanner_.error());
  if (scanned == ParseStatus::kIncomplete) return scanned;
  std::string_view head = buffer.substr(0, scanner_.head_bytes());
  const size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  // HTTP-version SP 3DIGIT [SP reason] (a missing SP before an empty reason is read).
  bool major_other = false;
  const int minor = ParseVersion(line.substr(0, 8), &major_other);
  if (minor < 0) return Fail("a bad status line version");
  if (line.size() < 12 || line[8] != ' ') return Fail("a bad status line");
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return Fail("a bad status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || status > 599) return Fail("a bad status code");
  if (line.size() > 12 && line[12] != ' ') return Fail("a bad status line");
  out->reason = line.size() > 13 ? line.substr(13) : std::string_view();
  for (char c : out->reason) {
    if (!IsFieldValueChar(static_cast<unsigned char>(c))) return Fail("a control in the reason");
  }
  out->version_minor = minor;
  out->status = status;
  std::string_view reason = ParseFields(head.substr(line_end + 2), scanner_.limits(), &out->fields);
  if (!reason.empty()) return Fail(reason);
  out->semantics = Semantics();
  bool not_implemented = false;
  reason = ReadSemantics(out->fields, minor, &out->semantics, &not_implemented);
  if (!reason.empty()) return Fail(reason);
  // No body whatever the fields say (RFC 9112 §6.3): 1xx, 204, 304, a HEAD's answer.
  out->declared_length =
      out->semantics.length_field ? static_cast<int64_t>(out->semantics.content_length) : -1;
  if (head_request || status < 200 || status == 204 || status == 304) {
    out->semantics.body = BodyKind::kNone;
    out->semantics.content_length = 0;
  } else if (out->semantics.body == BodyKind::kNone && out->declared_length < 0) {
    out->semantics.body = BodyKind::kUntilClose;
  }
  if (out->semantics.body == BodyKind::kUntilClose) out->semantics.keep_alive = false;
  return ParseStatus::kDone;
}

void ChunkedDecoder::Reset() {
  state_ = State::kSize;
  size_ = 0;
  digits_ = 0;
  line_bytes_ = 0;
  trailer_bytes_ = 0;
  trailer_line_ = 0;
  trailer_cr_ = false;
  name_done_ = false;
  ext_ = Ext::kBws;
  ext_after_name_ = false;
  body_bytes_ = 0;
  error_ = {};
}

ChunkedDecoder::Step ChunkedDecoder::Fail(std::string_view reason, size_t consumed) {
  state_ = State::kError;
  error_ = reason;
  return {consumed, {}};
}

ChunkedDecoder::Step ChunkedDecoder::Next(std::string_view in) {
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    switch (state_) {
      case State::kSize: {
        const int h = HexDigitValue(static_cast<char>(c));
        if (h >= 0) {
          // 15 hex digits: 2^60 bytes, far past any body, never an overflow.
          if (++digits_ > 15) return Fail("a chunk size too large", i);
          size_ = size_ * 16 + static_cast<uint64_t>(h);
        } else if (digits_ == 0) {
          return Fail("a bad chunk size", i);
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::kExtension;
          ext_ = c == ';' ? Ext::kSemi : Ext::kBws;
        } else {
          return Fail("a bad chunk size", i);
        }
        break;
      }
      case State::kExtension:
        // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), checked and
        // dropped; bounded per chunk by the size line's limit.
        if (c == '\r' && ext_ != Ext::kQuoted && ext_ != Ext::kEscape) {
          if (ext_ != Ext::kName && ext_ != Ext::kToken && ext_ != Ext::kClosed &&
              ext_ != Ext::kAfterBws) {
            return Fail("a malformed chunk extension", i);
          }
          state_ = State::kSizeLf;
        } else if (!Extension(c)) {
          return Fail("a malformed chunk extension", i);
        }
        break;
      case State::kSizeLf:
        if (c != '\n') return Fail("a chunk size line without CR LF", i);
        line_bytes_ = 0;
        digits_ = 0;
        state_ = size_ == 0 ? State::kTrailer : State::kData;
        ++i;
        if (state_ == State::kTrailer) {
          trailer_line_ = 0;
          trailer_cr_ = false;
          Step t = Trailer(in.substr(i));
          t.consumed += i;
          return t;
        }
        return {i, {}};
      case State::kData: {
        const uint64_t take = std::min<uint64_t>(size_, in.size() - i);
        size_ -= take;
        body_bytes_ += take;
        if (size_ == 0) state_ = State::kDataCr;
        return {i + take, in.substr(i, take)};
      }
      case State::kDataCr:
        if (c != '\r') return Fail("chunk data longer than its size", i);
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (c != '\n') return Fail("chunk data without CR LF", i);
        state_ = State::kSize;
        break;
      case State::kTrailer: {
        Step t = Trailer(in.substr(i));
        t.consumed += i;
        return t;
      }
      case State::kDone:
      case State::kError:
        return {i, {}};
    }
    if (state_ == State::kSize || state_ == State::kExtension || state_ == State::kSizeLf) {
      if (++line_bytes_ > line_max_) return Fail("a chunk size line over the limit", i);
    }
    ++i;
  }
  return {i, {}};
}

bool ChunkedDecoder::Extension(unsigned char c) {
  const bool ws = c == ' ' || c == '\t';
  switch (ext_) {
    case Ext::kBws:  // after the size: only BWS, then ';'
      if (c == ';') ext_ = Ext::kSemi;
      return ws || c == ';';
    case Ext::kSemi:
      if (IsTchar(c)) ext_ = Ext::kName;
      return ws || IsTchar(c);
    case Ext::kName:
    case Ext::kToken:
    case Ext::kClosed:
      if (ext_ != Ext::kClosed && IsTchar(c)) return true;
      if (ws) {
        ext_after_name_ = ext_ == Ext::kName;
        ext_ = Ext::kAfterBws;
        return true;
      }
      if (c == ';') {
        ext_ = Ext::kSemi;
        return true;
      }
      if (c == '=' && ext_ == Ext::kName) {
        ext_ = Ext::kEquals;
        return true;
      }
      return false;
    case Ext::kAfterBws:
      if (ws) return true;
      if (c == ';') {
        ext_ = Ext::kSemi;
        return true;
      }
      if (c == '=' && ext_after_name_) {
        ext_ = Ext::kEquals;
        return true;
      }
      return false;
    case Ext::kEquals:
      if (ws) return true;
      if (c == '"') {
        ext_ = Ext::kQuoted;
        return true;
      }
      if (IsTchar(c)) {
        ext_ = Ext::kToken;
        return true;
      }
      return false;
    case Ext::kQuoted:
      if (c == '"') {
        ext_ = Ext::kClosed;
        return true;
      }
      if (c == '\\') {
        ext_ = Ext::kEscape;
        return true;
      }
      return IsFieldValueChar(c);
    case Ext::kEscape:
      ext_ = Ext::kQuoted;
      return IsFieldValueChar(c);
  }
  return false;
}

// The trailer section: field lines until an empty line, checked as field lines are
// (no obs-fold, no whitespace before the colon, no controls) and dropped.
ChunkedDecoder::Step ChunkedDecoder::Trailer(std::string_view in) {
  size_t i = 0;
  for (; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (++trailer_bytes_ > trailer_max_) return Fail("trailers over the limit", i);
    if (trailer_cr_) {
      if (c != '\n') return Fail("a bare CR in the trailers", i);
      if (trailer_line_ == 0) {
        state_ = State::kDone;
        return {i + 1, {}};
      }
      trailer_cr_ = false;
      trailer_line_ = 0;
      name_done_ = false;
      continue;
    }
    if (c == '\r') {
      if (trailer_line_ > 0 && !name_done_) return Fail("a trailer line without a colon", i);
      trailer_cr_ = true;
      continue;
    }
    if (trailer_line_ == 0 && (c == ' ' || c == '\t')) return Fail("obs-fold in the trailers", i);
    ++trailer_line_;
    if (!name_done_) {
      if (c == ':') {
        if (trailer_line_ == 1) return Fail("a trailer without a name", i);
        name_done_ = true;
      } else if (!IsTchar(c)) {
        return Fail("a bad trailer name", i);
      }
    } else if (!IsFieldValueChar(c)) {
      return Fail("a control character in the trailers", i);
    }
  }
  return {i, {}};
}

std::string_view HostWithoutPort(std::string_view host) {
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  return host.substr(0, host.find(':'));
}

}  // namespace ringproxy::http
