// HTTP/1.x message heads (RFC 9112 §2–§6, RFC 9110 §5–§7): pure, incremental,
// zero-copy parsers for request and response heads, strict as a reverse proxy must be
// (docs: ../shared/spec/protocol-rules.md). Every ambiguous framing is an error that
// carries the status to answer (400, 414, 431, 501, 505; a response's errors are the
// proxy's 502), never a guess: CL with TE, differing CLs, a TE whose last coding is not
// chunked, obs-fold, a bare CR or LF, NUL or other controls, whitespace before a colon,
// bad or overflowing numbers, a missing, repeated or invalid Host on HTTP/1.1, HTTP/0.9
// and versions other than 1.x. What a proxy forwards is re-framed by the caller from
// the parsed framing, never copied from the wire.
//
// Usage: a parser per connection; give Parse() the whole buffer so far each time more
// bytes arrive (it looks only at the new ones until the head is complete). On kDone the
// head's views point into that buffer, and head_bytes() says where the body begins.
//
// The HTTP proxy session (proto/http_proxy.cc) reads every request and response with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ringproxy::http {

struct Limits {
  size_t head_bytes_max = 16384;  // all of the head: 431 beyond
  size_t line_bytes_max = 8192;   // one line: 414 for a request line, else 431
  size_t fields_max = 100;        // 431 beyond
};

struct Field {
  std::string_view name;   // as sent (compare case-insensitively)
  std::string_view value;  // without leading and trailing whitespace
};

enum class BodyKind : uint8_t {
  kNone,        // no body (request without CL/TE; 1xx/204/304 or a HEAD's response)
  kLength,      // content_length bytes (a request with "Content-Length: 0" is kNone)
  kChunked,     // chunked (ChunkedDecoder)
  kUntilClose,  // a response without CL or TE: the body ends with the connection
};

// What Connection, Upgrade and Expect say, shared by requests and responses.
struct Semantics {
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool length_field = false;        // a (valid) Content-Length was sent
  bool keep_alive = false;          // HTTP/1.1 unless "close"; HTTP/1.0 only with "keep-alive"
  bool connection_upgrade = false;  // "upgrade" among Connection's options
  std::string_view upgrade;         // the Upgrade field (protocols offered / chosen)
  bool upgrade_repeated = false;    // more than one Upgrade field: one list of them all
};

struct RequestHead {
  std::string_view method;
  std::string_view target;
  int version_minor = 1;  // HTTP/1.0 or 1.1; a higher minor reads as 1 (RFC 9110 §2.5)
  std::vector<Field> fields;
  std::string_view host;         // Host's value, or an absolute-form target's authority
  std::string_view authority;    // an absolute-form target's authority ("" otherwise)
  bool expect_continue = false;  // "Expect: 100-continue"
  bool expect_other = false;     // any other expectation: answer 417
  Semantics semantics;
};

struct ResponseHead {
  int version_minor = 1;
  int status = 0;
  std::string_view reason;
  std::vector<Field> fields;
  Semantics semantics;
  // The valid Content-Length, -1 without one. For a bodyless response (a HEAD's
  // answer, a 304) it is the representation's size, which the proxy writes once again.
  int64_t declared_length = -1;
};

enum class ParseStatus : uint8_t { kIncomplete, kDone, kError };

// Finds where a head ends, a line at a time, checking what a line ending and the
// limits allow before the head is whole (so an endless head fails at its limit).
class HeadScanner {
 public:
  explicit HeadScanner(const Limits& limits) : limits_(limits) {}
  // kDone when `buffer` holds the whole head (see head_bytes()).
  ParseStatus Scan(std::string_view buffer, bool request);
  size_t head_bytes() const { return end_; }
  size_t leading_bytes() const { return leading_; }  // empty lines before a request line
  int error_status() const { return error_status_; }
  std::string_view error() const { return error_; }
  const Limits& limits() const { return limits_; }
  void Reset();

 private:
  ParseStatus Fail(int status, std::string_view reason);

  Limits limits_;
  size_t scanned_ = 0;     // bytes already looked at
  size_t line_start_ = 0;  // where the current line began
  size_t leading_ = 0;
  size_t lines_ = 0;  // complete lines of the head (start line included)
  size_t end_ = 0;
  int error_status_ = 0;
  std::string_view error_;
};

class RequestParser {
 public:
  explicit RequestParser(const Limits& limits = Limits()) : scanner_(limits) {}
  ParseStatus Parse(std::string_view buffer, RequestHead* out);
  size_t head_bytes() const { return scanner_.head_bytes(); }
  int error_status() const { return error_status_; }  // 400, 414, 431, 501 or 505
  std::string_view error() const { return error_; }   // a static reason, for the log
  void Reset();                                       // for the next request on the connection

 private:
  ParseStatus Fail(int status, std::string_view reason);

  HeadScanner scanner_;
  int error_status_ = 0;
  std::string_view error_;
};

class ResponseParser {
 public:
  explicit ResponseParser(const Limits& limits = Limits()) : scanner_(limits) {}
  // `head_request`: the response answers a HEAD (no body, whatever it says).
  ParseStatus Parse(std::string_view buffer, bool head_request, ResponseHead* out);
  size_t head_bytes() const { return scanner_.head_bytes(); }
  std::string_view error() const { return error_; }  // the proxy answers 502
  void Reset();

 private:
  ParseStatus Fail(std::string_view reason);

  HeadScanner scanner_;
  std::string_view error_;
};

// Chunked bodies (RFC 9112 §7.1): decodes in any split, handing out the data as views
// into the input. Chunk extensions are checked and dropped (their bytes per chunk are
// limited); trailer fields are checked and dropped (framing must not come from them,
// RFC 9110 §6.5), so the caller re-frames the body as chunked without extensions or
// trailers, or as a length.
class ChunkedDecoder {
 public:
  struct Step {
    size_t consumed = 0;    // input used by this step
    std::string_view data;  // body bytes to pass on (a view into the input)
  };
  explicit ChunkedDecoder(size_t line_bytes_max = 4096, size_t trailer_bytes_max = 8192)
      : line_max_(line_bytes_max), trailer_max_(trailer_bytes_max) {}
  // One step over `in`; call again with the rest while it consumes. done() after the
  // last chunk's trailers; failed() with error() on bad framing (400 / 502).
  Step Next(std::string_view in);
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kError; }
  std::string_view error() const { return error_; }
  uint64_t body_bytes() const { return body_bytes_; }
  void Reset();

 private:
  enum class State : uint8_t {
    kSize,
    kExtension,  // ext_ says where in the extension
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailer,
    kDone,
    kError
  };
  // Where a chunk extension is: after BWS that must lead to ';', after ';' (a name
  // must come), in a name, after '=' (a value must come), in a token value, after BWS
  // that follows a name or value, in a quoted string, after its backslash, after it.
  enum class Ext : uint8_t {
    kBws,
    kSemi,
    kName,
    kEquals,
    kToken,
    kAfterBws,
    kQuoted,
    kEscape,
    kClosed
  };
  Step Fail(std::string_view reason, size_t consumed);
  Step Trailer(std::string_view in);
  // One byte of a chunk extension; false when it breaks the grammar.
  bool Extension(unsigned char c);

  size_t line_max_;
  size_t trailer_max_;
  State state_ = State::kSize;
  uint64_t size_ = 0;
  int digits_ = 0;
  size_t line_bytes_ = 0;     // of the current size line
  size_t trailer_bytes_ = 0;  // of the trailer section
  size_t trailer_line_ = 0;   // bytes of the current trailer line
  bool trailer_cr_ = false;   // the current trailer line has seen its CR
  bool name_done_ = false;    // the current trailer line has passed its colon
  Ext ext_ = Ext::kBws;
  bool ext_after_name_ = false;  // kAfterBws follows a name ('=' may come)
  uint64_t body_bytes_ = 0;
  std::string_view error_;
};

// A field name (RFC 9110 token), and a field value as the proxy writes it (no control
// but HTAB, no whitespace at either end): for fields the configuration adds.
bool IsFieldName(std::string_view name);
bool IsCleanFieldValue(std::string_view value);

// Calls fn(option) for each comma-separated, whitespace-trimmed, non-empty element of
// a field value ("close, Upgrade" -> "close", "Upgrade").
template <typename Fn>
void ForEachListElement(std::string_view value, Fn fn) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view element = value.substr(0, comma);
    while (!element.empty() && (element.front() == ' ' || element.front() == '\t')) {
      element.remove_prefix(1);
    }
    while (!element.empty() && (element.back() == ' ' || element.back() == '\t')) {
      element.remove_suffix(1);
    }
    if (!element.empty()) fn(element);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

// "host:port" or "[v6]:port" without the port.
std::string_view HostWithoutPort(std::string_view host);

}  // namespace ringproxy::http
