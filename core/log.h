// Logging that never blocks a reactor on disk. A line is formatted (fmt) on the
// calling thread into that thread's own buffer; a writer thread swaps the buffers out
// and writes them. A thread whose buffer is full (the disk is stuck) drops lines and
// counts them; the count is reported once the writer catches up.
//
// Usage: RP_LOG(kInfo, "tcp {} -> {}", client, upstream);
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fmt/format.h"

namespace ringproxy::log {

enum class Level : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

struct Options {
  std::string path;  // empty: standard error
  Level level = Level::kInfo;
  std::string access_path;  // the access log's own file; empty: access lines go to the log
};

// Starts the writer thread. Until then (and after Shutdown) lines are written
// synchronously to standard error, which is what tests and tools want.
absl::Status Start(const Options& options);
// Opens the log file again (after rotation) and applies a new level.
absl::Status Reconfigure(const Options& options);
// The same in two steps, for a reload that may still be refused: Prepare opens the
// files; Commit switches to them and to the level; Discard closes them and removes a
// file that Prepare created.
struct PendingFiles {
  int fd[2] = {-1, -1};
  std::string created[2];
  Level level = Level::kInfo;
};
absl::StatusOr<PendingFiles> Prepare(const Options& options);
void Commit(PendingFiles* files);
void Discard(PendingFiles* files);
// Flushes everything and stops the writer thread. False when the writer could not
// finish within `wait` (its output blocked): it is left running detached, lines after
// this call are kept in memory, never written, and the process should exit.
bool Shutdown(std::chrono::milliseconds wait = std::chrono::seconds(3));

bool ParseLevel(std::string_view text, Level* out);
// Now as "2026-12-02T23:40:00.123Z" (UTC, milliseconds), as log lines start.
std::string UtcStamp();
// Now as nginx's $time_local in UTC: "02/Dec/2026:23:40:00 +0000".
std::string CommonLogStamp();
std::string_view LevelName(Level level);
void SetLevel(Level level);
Level GetLevel();
inline bool Enabled(Level level) { return static_cast<int>(level) >= static_cast<int>(GetLevel()); }

// A short name that prefixes this thread's lines ("main", "shard 3").
void SetThreadName(std::string_view name);

void WriteLine(Level level, std::string_view message);
uint64_t DroppedLines();

// A value from outside in a key=value line: spaces, '"', '=' and '\' are written as
// \xHH too, so that it cannot pass for more fields.
struct Word {
  std::string_view text;
};

namespace internal {
// "<stamp> <level> [<thread>] ": what every line starts with.
void AppendPrefix(Level level, fmt::memory_buffer* line);
// Ends a formatted line: control bytes from `from` on are written as \xHH (a value
// from a client cannot start a line of its own), then the newline.
void EndLine(fmt::memory_buffer* line, size_t from);
// Queues one whole line (ending in '\n') for the writer thread; stream 1: the access log,
// 2: standard output.
void Emit(std::string_view line, int stream = 0);
}  // namespace internal

// For lines written outside this log (a tool's own request log): the same ending, so a
// value from a client cannot start a line of its own there either.
inline void EndEscapedLine(fmt::memory_buffer* line, size_t from) { internal::EndLine(line, from); }

// Formats prefix and message into one buffer (no second copy of the message).
template <typename... Args>
void Write(Level level, fmt::format_string<Args...> format, Args&&... args) {
  fmt::memory_buffer line;
  internal::AppendPrefix(level, &line);
  const size_t from = line.size();
  fmt::format_to(std::back_inserter(line), format, std::forward<Args>(args)...);
  internal::EndLine(&line, from);
  internal::Emit(std::string_view(line.data(), line.size()));
}

// One access line (ending in '\n', written as is) to the access log.
inline void Access(std::string_view line) { internal::Emit(line, 1); }
// One whole line (ending in '\n', written as is) to standard output, by the writer
// thread: never cut into by the log's lines when both outputs share a pipe.
inline void StandardOutput(std::string_view line) { internal::Emit(line, 2); }

// An access line with the log's prefix (time, level info, thread) to the access log.
template <typename... Args>
void AccessLine(fmt::format_string<Args...> format, Args&&... args) {
  fmt::memory_buffer line;
  internal::AppendPrefix(Level::kInfo, &line);
  const size_t from = line.size();
  fmt::format_to(std::back_inserter(line), format, std::forward<Args>(args)...);
  internal::EndLine(&line, from);
  Access(std::string_view(line.data(), line.size()));
}

}  // namespace ringproxy::log

template <>
struct fmt::formatter<ringproxy::log::Word> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(ringproxy::log::Word w, Context& ctx) const {
    auto out = ctx.out();
    for (char ch : w.text) {
      const auto c = static_cast<unsigned char>(ch);
      if (c <= 0x20 || c >= 0x7f || c == '"' || c == '=' || c == '\\') {
        out = fmt::format_to(out, "\\x{:02X}", c);
      } else {
        *out++ = ch;
      }
    }
    return out;
  }
};

#define RP_LOG(level, ...)                                                  \
  do {                                                                      \
    if (::ringproxy::log::Enabled(::ringproxy::log::Level::level)) {        \
      ::ringproxy::log::Write(::ringproxy::log::Level::level, __VA_ARGS__); \
    }                                                                       \
  } while (0)
