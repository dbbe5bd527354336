#include "bench/loadgen/http_response.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/ascii.h"

namespace ringproxy::loadgen {
namespace {

bool ContainsToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (EqualsIgnoreCase(TrimOws(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

void HttpResponseReader::Reset() {
  state_ = State::kHead;
  head_.clear();
  line_.clear();
  error_.clear();
  status_ = 0;
  keep_alive_ = true;
  remaining_ = 0;
  body_bytes_ = 0;
  body_matches_ = true;
}

void HttpResponseReader::ExpectFill(std::string fill) {
  fill_ = std::move(fill);
  fill_block_.clear();
  if (fill_.empty()) return;
  // A whole number of fills, so that an offset into the fill is one into the block.
  while (fill_block_.size() < 65536) fill_block_ += fill_;
}

void HttpResponseReader::Body(std::string_view piece) {
  if (!fill_.empty() && body_matches_) {
    size_t at = body_bytes_ % fill_.size();
    std::string_view rest = piece;
    while (!rest.empty()) {
      const size_t n = std::min(rest.size(), fill_block_.size() - at);
      if (memcmp(rest.data(), fill_block_.data() + at, n) != 0) {
        body_matches_ = false;
        break;
      }
      rest.remove_prefix(n);
      at = (at + n) % fill_.size();
    }
  }
  body_bytes_ += piece.size();
}

void HttpResponseReader::Fail(std::string reason) {
  state_ = State::kError;
  error_ = std::move(reason);
}

size_t HttpResponseReader::FeedHead(std::string_view data) {
  // The head ends at the first blank line; it may straddle calls.
  const size_t before = head_.size();
  size_t take = std::min(data.size(), kHeadMax + 4 - std::min(before, kHeadMax + 4));
  // Copy no further than a blank line inside `data` (the body stays where it is).
  if (size_t e = data.find("\r\n\r\n"); e != std::string_view::npos) take = std::min(take, e + 4);
  head_.append(data.data(), take);
  size_t search_from = before >= 3 ? before - 3 : 0;
  size_t end = head_.find("\r\n\r\n", search_from);
  if (end == std::string::npos) {
    if (head_.size() > kHeadMax) Fail("response head longer than 16 KiB");
    return take;
  }
  const size_t head_len = end + 4;
  const size_t consumed = head_len - before;
  head_.resize(head_len);
  if (ParseHead()) {
    if (state_ == State::kBody && remaining_ == 0) state_ = State::kDone;
  }
  return consumed;
}

bool HttpResponseReader::ParseHead() {
  std::string_view head(head_);
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 200 Reason"
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ') {
    Fail("bad status line");
    return false;
  }
  const bool http10 = status_line[7] == '0';
  keep_alive_ = !http10;
  auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status_);
  if (ec != std::errc() || p != status_line.data() + 12 || status_ < 100 || status_ > 999 ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    Fail("bad status code");
    return false;
  }
  bool chunked = false;
  bool have_length = false;
  uint64_t length = 0;
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, next - pos);
    pos = next + 2;
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      Fail("bad header line");
      return false;
    }
    std::string_view name = line.substr(0, colon);
    std::string_view value = TrimOws(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "content-length")) {
      uint64_t this_length = 0;
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), this_length);
      if (e != std::errc() || q != value.data() + value.size() ||
          (have_length && this_length != length)) {
        Fail("bad Content-Length");
        return false;
      }
      length = this_length;
      have_length = true;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      // Only a final "chunked" frames the body; a proxy must not send anything else.
      const size_t comma = value.rfind(',');
      const std::string_view last =
          TrimOws(comma == std::string_view::npos ? value : value.substr(comma + 1));
      if (!EqualsIgnoreCase(last, "chunked")) {
        Fail("transfer coding not a final chunked");
        return false;
      }
      chunked = true;
    } else if (EqualsIgnoreCase(name, "connection")) {
      if (ContainsToken(value, "close")) keep_alive_ = false;
      if (ContainsToken(value, "keep-alive")) keep_alive_ = true;
    }
  }
  if (chunked && have_length) {
    Fail("both Content-Length and Transfer-Encoding");
    return false;
  }
  if (status_ < 200 && status_ != 101) {
    // Interim (100 Continue, 103 Early Hints): the final response follows.
    head_.clear();
    keep_alive_ = true;
    return true;
  }
  if (status_ == 204 || status_ == 304 || status_ < 200) {
    state_ = State::kDone;
  } else if (chunked) {
    state_ = State::kChunkSize;
  } else if (have_length) {
    state_ = State::kBody;
    remaining_ = length;
  } else {
    state_ = State::kUntilClose;
    keep_alive_ = false;
  }
  return true;
}

size_t HttpResponseReader::Feed(std::string_view data) {
  size_t used = 0;
  while (used < data.size() && state_ != State::kDone && state_ != State::kError) {
    std::string_view rest = data.substr(used);
    switch (state_) {
      case State::kHead:
        used += FeedHead(rest);
        break;
      case State::kBody: {
        uint64_t n = std::min<uint64_t>(remaining_, rest.size());
        remaining_ -= n;
        Body(rest.substr(0, n));
        used += n;
        if (remaining_ == 0) state_ = State::kDone;
        break;
      }
      case State::kUntilClose:
        Body(rest);
        used += rest.size();
        break;
      case State::kChunkSize:
      case State::kTrailer: {
        size_t nl = rest.find('\n');
        size_t take = nl == std::string_view::npos ? rest.size() : nl + 1;
        if (line_.size() + take > 1024) {
          Fail("chunk-size or trailer line longer than 1 KiB");
          break;
        }
        line_.append(rest.data(), take);
        used += take;
        if (nl == std::string_view::npos) break;
        std::string_view line = TrimOws(std::string_view(line_).substr(0, line_.size() - 1));
        if (state_ == State::kTrailer) {
          if (line.empty()) state_ = State::kDone;
          line_.clear();
          break;
        }
        size_t semi = line.find(';');
        std::string_view hex = TrimOws(line.substr(0, semi));
        uint64_t size = 0;
        auto [q, e] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
        if (hex.empty() || e != std::errc() || q != hex.data() + hex.size()) {
          Fail("bad chunk size");
          break;
        }
        line_.clear();
        if (size == 0) {
          state_ = State::kTrailer;
        } else {
          remaining_ = size;
          state_ = State::kChunkData;
        }
        break;
      }
      case State::kChunkData: {
        uint64_t n = std::min<uint64_t>(remaining_, rest.size());
        remaining_ -= n;
        Body(rest.substr(0, n));
        used += n;
        if (remaining_ == 0) {
          state_ = State::kChunkDataEnd;
          remaining_ = 2;  // CRLF after the data
        }
        break;
      }
      case State::kChunkDataEnd: {
        char c = rest[0];
        if ((remaining_ == 2 && c != '\r') || (remaining_ == 1 && c != '\n')) {
          Fail("chunk data not followed by CRLF");
          break;
        }
        ++used;
        if (--remaining_ == 0) state_ = State::kChunkSize;
        break;
      }
      case State::kDone:
      case State::kError:
        break;
    }
  }
  return used;
}

void HttpResponseReader::FeedEof() {
  if (state_ == State::kUntilClose) {
    state_ = State::kDone;
  } else if (state_ != State::kDone && state_ != State::kError) {
    Fail(empty() ? "connection closed before a response" : "connection closed mid-response");
  }
}

}  // namespace ringproxy::loadgen
