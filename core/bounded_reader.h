// BoundedReader: protocol input from a ByteStream, cut into lines or counted blocks,
// without letting a slow or hostile peer pin memory.
//  - Line mode: a line ends at LF (a CR before it is dropped) or, strictly, at CRLF
//    (a bare LF is an error). A line longer than max_line is an error (kTooLong), never
//    a silent truncation; SkipLine() then resynchronises at the next line end.
//  - Counted mode: ReadSome() hands out up to n bytes as they come (IMAP literals,
//    HTTP bodies streamed on); ReadExactly() collects n bytes (small literals).
//  - buffered()/DiscardBuffered(): what was received and not returned yet, so a
//    session can refuse or drop plaintext pipelined behind STARTTLS.
// A line or block that lies whole in the stream's current chunk is returned as a view
// into it (zero copy); a partial one is copied into the reader's own buffer before
// the reader waits, so no ring buffer is held across a wait. The own buffer is freed
// whenever it empties: an idle reader holds no allocation.
// Views stay valid until the next call on the reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/byte_stream.h"
#include "core/deadline.h"
#include "core/task.h"

namespace ringproxy {

enum class LineEnding : uint8_t {
  kLf,    // LF ends a line; a CR right before it is not part of the line
  kCrlf,  // only CRLF ends a line; a bare LF is kBadLineEnding
};

enum class ReadStatus : uint8_t {
  kOk,
  kEof,            // the peer ended its side (bytes of an unfinished line are dropped)
  kTimeout,        // the deadline passed
  kTooLong,        // a line over max_line
  kBadLineEnding,  // LineEnding::kCrlf and a bare LF
  kError,          // the stream failed (error() has the errno)
  kStopped,        // the stream was aborted
};

std::string_view ReadStatusName(ReadStatus s);

class BoundedReader {
 public:
  BoundedReader(ByteStream* stream, size_t max_line, LineEnding ending = LineEnding::kLf);
  BoundedReader(const BoundedReader&) = delete;
  BoundedReader& operator=(const BoundedReader&) = delete;

  // The next line, without its ending.
  Task<ReadStatus> ReadLine(Deadline deadline, std::string_view* line);
  // After kTooLong: discards the rest of that line, up to and including its end.
  Task<ReadStatus> SkipLine(Deadline deadline);
  // Between 1 and `max` bytes, as soon as any are available.
  Task<ReadStatus> ReadSome(size_t max, Deadline deadline, std::span<const std::byte>* out);
  // Exactly `n` bytes, appended to *out (the caller bounds n).
  Task<ReadStatus> ReadExactly(size_t n, Deadline deadline, std::string* out);

  // Bytes received and not returned yet: the reader's own and the stream's.
  size_t buffered() const;
  size_t DiscardBuffered();
  // Done with the reader: gives the stream back what the last call returned, and
  // returns the bytes the reader had copied and not handed out yet (they come before
  // whatever the stream still holds). The next protocol phase reads the stream itself.
  std::string Release();
  // Switches to another stream (STARTTLS: the TLS stream over the same socket). The
  // reader must hold nothing (discard first).
  void Reset(ByteStream* stream);

  int error() const { return error_; }
  void set_max_line(size_t n) { max_line_ = n; }
  size_t max_line() const { return max_line_; }
  size_t own_capacity() const { return own_.capacity(); }

 private:
  void Settle();
  Task<ReadStatus> More(Deadline deadline);
  // Looks for a line end in `data`; returns the index of the LF or npos.
  static size_t FindLf(std::span<const std::byte> data);
  ReadStatus LineFrom(std::string_view text, size_t lf, std::string_view* line);

  ByteStream* stream_;
  size_t max_line_;
  LineEnding ending_;
  std::string own_;          // a partial line (or block) copied out of the stream
  size_t own_taken_ = 0;     // of own_, returned by the last call
  size_t stream_taken_ = 0;  // of the stream's Peek(), returned by the last call
  bool skipping_ = false;    // a line over max_line has not ended yet
  int error_ = 0;
};

}  // namespace ringproxy
