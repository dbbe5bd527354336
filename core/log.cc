#include "core/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "fmt/format.h"

namespace ringproxy::log {
namespace {

constexpr size_t kThreadBufferMax = 4 << 20;

constexpr int kFileStreams = 2;  // 0: the log, 1: the access log (files or the log's)
constexpr int kStdout = 2;       // lines for standard output, whatever the files are
constexpr int kStreams = 3;

struct ThreadBuffer {
  std::mutex mu;
  std::string data[kStreams];
  uint64_t dropped = 0;
};

struct Sink {
  std::mutex mu;  // guards buffers, fd, running
  std::condition_variable cv;
  std::vector<std::shared_ptr<ThreadBuffer>> buffers;
  // Owned by the writer thread while it runs; the access stream's -1: the log's.
  int fd[kFileStreams] = {STDERR_FILENO, -1};
  int next_fd[kFileStreams] = {-1, -1};  // reopened files for the writer to switch to
  bool switch_fds = false;
  std::atomic<bool> running{false};
  bool stop = false;
  bool pending = false;
  bool writer_done = false;
  std::condition_variable done_cv;
  std::thread writer;
  std::atomic<uint64_t> dropped_total{0};
};

Sink& GetSink() {
  static Sink* sink = new Sink();  // never destroyed: threads may log at exit
  return *sink;
}

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

thread_local std::shared_ptr<ThreadBuffer> t_buffer;
thread_local char t_name[32] = "main";
thread_local int64_t t_stamp_second = -1;
thread_local char t_stamp[32];

ThreadBuffer& MyBuffer() {
  if (!t_buffer) {
    t_buffer = std::make_shared<ThreadBuffer>();
    Sink& sink = GetSink();
    std::lock_guard<std::mutex> lock(sink.mu);
    sink.buffers.push_back(t_buffer);
  }
  return *t_buffer;
}

void WriteFully(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report it
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void CloseOwned(int fd) {
  if (fd > STDERR_FILENO) ::close(fd);
}

const char* Stamp();

// Swaps every thread's buffers out and writes them. Called with sink.mu not held.
void Drain(Sink& sink, const int (&fd)[kFileStreams]) {
  std::vector<std::shared_ptr<ThreadBuffer>> buffers;
  {
    std::lock_guard<std::mutex> lock(sink.mu);
    buffers = sink.buffers;
  }
  std::string out[kStreams];
  for (auto& b : buffers) {
    std::string taken[kStreams];
    uint64_t dropped = 0;
    {
      std::lock_guard<std::mutex> lock(b->mu);
      for (int i = 0; i < kStreams; ++i) taken[i].swap(b->data[i]);
      dropped = std::exchange(b->dropped, 0);
    }
    for (int i = 0; i < kFileStreams; ++i) out[fd[i] >= 0 ? i : 0] += taken[i];
    out[kStdout] += taken[kStdout];
    if (dropped != 0) {
      out[0] += fmt::format("{} {} [log] dropped {} lines (log output too slow)\n", Stamp(),
                            LevelName(Level::kWarn), dropped);
    }
  }
  // One thread writes every stream: lines sharing a pipe (standard output and error
  // joined, as under systemd) never cut into each other.
  for (int i = 0; i < kFileStreams; ++i) {
    if (fd[i] >= 0) WriteFully(fd[i], out[i]);
  }
  WriteFully(STDOUT_FILENO, out[kStdout]);
}

void WriterLoop() {
  Sink& sink = GetSink();
  for (;;) {
    int fd[kFileStreams] = {-1, -1};
    int old_fd[kFileStreams] = {-1, -1};
    bool stop;
    {
      std::unique_lock<std::mutex> lock(sink.mu);
      sink.cv.wait(lock, [&] { return sink.pending || sink.stop; });
      sink.pending = false;
      if (std::exchange(sink.switch_fds, false)) {
        for (int i = 0; i < kFileStreams; ++i) {
          old_fd[i] = sink.fd[i];
          sink.fd[i] = std::exchange(sink.next_fd[i], -1);
        }
      }
      for (int i = 0; i < kFileStreams; ++i) fd[i] = sink.fd[i];
      stop = sink.stop;
    }
    for (int i = 0; i < kFileStreams; ++i) {
      if (old_fd[i] != fd[0] && old_fd[i] != fd[1]) CloseOwned(old_fd[i]);
    }
    Drain(sink, fd);
    if (stop) {
      std::lock_guard<std::mutex> lock(sink.mu);
      sink.writer_done = true;
      sink.done_cv.notify_all();
      return;
    }
  }
}

const char* Stamp() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != t_stamp_second) {
    t_stamp_second = ts.tv_sec;
    tm parts;
    gmtime_r(&ts.tv_sec, &parts);
    strftime(t_stamp, sizeof(t_stamp), "%Y-%m-%dT%H:%M:%S", &parts);
  }
  static thread_local char full[48];
  snprintf(full, sizeof(full), "%s.%03ldZ", t_stamp, ts.tv_nsec / 1'000'000);
  return full;
}

// `key`: the config key that named the file, for the error.
// `*created` names the file when this open made it (so that a discarded reload can
// take it back).
absl::StatusOr<int> OpenLogFile(const std::string& path, int if_empty, std::string_view key,
                                std::string* created) {
  if (path.empty()) return if_empty;
  if (path == "-") return STDOUT_FILENO;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) {
    *created = path;
    return fd;
  }
  if (errno == EEXIST) fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return absl::UnavailableError(
        fmt::format("{}: cannot open log file {}: {}", key, path, strerror(errno)));
  return fd;
}

}  // namespace

bool ParseLevel(std::string_view text, Level* out) {
  if (text == "debug")
    *out = Level::kDebug;
  else if (text == "info")
    *out = Level::kInfo;
  else if (text == "warn")
    *out = Level::kWarn;
  else if (text == "error")
    *out = Level::kError;
  else if (text == "off")
    *out = Level::kOff;
  else
    return false;
  return true;
}

std::string UtcStamp() { return Stamp(); }

std::string CommonLogStamp() {
  const time_t now = time(nullptr);
  tm parts;
  gmtime_r(&now, &parts);
  char text[40];
  strftime(text, sizeof(text), "%d/%b/%Y:%H:%M:%S +0000", &parts);
  return text;
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "?";
}

void SetLevel(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }
Level GetLevel() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

void SetThreadName(std::string_view name) {
  size_t n = std::min(name.size(), sizeof(t_name) - 1);
  memcpy(t_name, name.data(), n);
  t_name[n] = '\0';
}

uint64_t DroppedLines() { return GetSink().dropped_total.load(std::memory_order_relaxed); }

void WriteLine(Level level, std::string_view message) {
  fmt::memory_buffer line;
  internal::AppendPrefix(level, &line);
  const size_t from = line.size();
  line.append(message);
  internal::EndLine(&line, from);
  internal::Emit(std::string_view(line.data(), line.size()));
}

void internal::EndLine(fmt::memory_buffer* line, size_t from) {
  auto control = [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  };
  const char* begin = line->data();
  const char* first = std::find_if(begin + from, begin + line->size(), control);
  if (first != begin + line->size()) {
    const size_t at = static_cast<size_t>(first - begin);
    const std::string rest(first, line->size() - at);
    line->resize(at);
    for (char ch : rest) {
      if (control(ch)) {
        fmt::format_to(std::back_inserter(*line), "\\x{:02X}", static_cast<unsigned char>(ch));
      } else {
        line->push_back(ch);
      }
    }
  }
  line->push_back('\n');
}

void internal::AppendPrefix(Level level, fmt::memory_buffer* line) {
  fmt::format_to(std::back_inserter(*line), "{} {} [{}] ", Stamp(), LevelName(level), t_name);
}

void internal::Emit(std::string_view line, int stream) {
  Sink& sink = GetSink();
  if (!sink.running.load(std::memory_order_acquire)) {
    WriteFully(stream == kStdout ? STDOUT_FILENO : STDERR_FILENO,
               std::string_view(line.data(), line.size()));
    return;
  }
  ThreadBuffer& b = MyBuffer();
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(b.mu);
    std::string& data = b.data[stream];
    if (data.size() + line.size() > kThreadBufferMax) {
      ++b.dropped;
      sink.dropped_total.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    was_empty = b.data[0].empty() && b.data[1].empty() && b.data[kStdout].empty();
    data.append(line.data(), line.size());
  }
  if (was_empty) {
    {
      std::lock_guard<std::mutex> lock(sink.mu);
      sink.pending = true;
    }
    sink.cv.notify_one();
  }
}

namespace {

// Both files, or neither (closing what was opened).
absl::StatusOr<PendingFiles> OpenBoth(const Options& options) {
  PendingFiles p;
  p.level = options.level;
  absl::StatusOr<int> main = OpenLogFile(options.path, STDERR_FILENO, "log.file", &p.created[0]);
  if (!main.ok()) return main.status();
  p.fd[0] = *main;
  absl::StatusOr<int> access =
      OpenLogFile(options.access_path, -1, "log.access_file", &p.created[1]);
  if (!access.ok()) {
    Discard(&p);
    return access.status();
  }
  p.fd[1] = *access;
  return p;
}

}  // namespace

absl::Status Start(const Options& options) {
  absl::StatusOr<PendingFiles> opened = OpenBoth(options);
  if (!opened.ok()) return opened.status();
  SetLevel(options.level);
  Sink& sink = GetSink();
  std::lock_guard<std::mutex> lock(sink.mu);
  if (sink.running.load()) {
    for (int f : opened->fd) CloseOwned(f);
    return absl::FailedPreconditionError("log writer already running");
  }
  for (int i = 0; i < kFileStreams; ++i) sink.fd[i] = opened->fd[i];
  sink.stop = false;
  sink.writer_done = false;
  sink.writer = std::thread(WriterLoop);
  sink.running.store(true, std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<PendingFiles> Prepare(const Options& options) { return OpenBoth(options); }

void Commit(PendingFiles* p) {
  SetLevel(p->level);
  Sink& sink = GetSink();
  {
    std::lock_guard<std::mutex> lock(sink.mu);
    if (!sink.running.load()) {
      for (int f : p->fd) CloseOwned(f);
      *p = PendingFiles();
      return;
    }
    // The writer switches descriptors itself, so it never writes to a closed one.
    for (int i = 0; i < kFileStreams; ++i) {
      if (sink.switch_fds) CloseOwned(sink.next_fd[i]);
      sink.next_fd[i] = p->fd[i];
    }
    sink.switch_fds = true;
    sink.pending = true;
  }
  *p = PendingFiles();
  sink.cv.notify_one();
}

void Discard(PendingFiles* p) {
  for (int i = 0; i < kFileStreams; ++i) {
    CloseOwned(p->fd[i]);
    if (!p->created[i].empty()) ::unlink(p->created[i].c_str());
  }
  *p = PendingFiles();
}

absl::Status Reconfigure(const Options& options) {
  absl::StatusOr<PendingFiles> opened = Prepare(options);
  if (!opened.ok()) return opened.status();
  Commit(&*opened);
  return absl::OkStatus();
}

bool Shutdown(std::chrono::milliseconds wait) {
  Sink& sink = GetSink();
  {
    std::lock_guard<std::mutex> lock(sink.mu);
    if (!sink.running.load()) return true;
    if (!sink.writer.joinable()) return false;  // left behind by an earlier call
    sink.stop = true;
  }
  sink.cv.notify_one();
  {
    // A writer blocked on an output nobody reads (a pipe whose reader stopped) would
    // hold the exit for ever: it is left behind, with what it had not written.
    std::unique_lock<std::mutex> lock(sink.mu);
    if (!sink.done_cv.wait_for(lock, wait, [&] { return sink.writer_done; })) {
      sink.writer.detach();
      return false;
    }
  }
  sink.writer.join();
  std::lock_guard<std::mutex> lock(sink.mu);
  sink.running.store(false, std::memory_order_release);
  // Lines written between the last drain and now are still in thread buffers.
  for (auto& b : sink.buffers) {
    std::lock_guard<std::mutex> block(b->mu);
    for (int i = 0; i < kFileStreams; ++i) {
      WriteFully(sink.fd[i] >= 0 ? sink.fd[i] : sink.fd[0], b->data[i]);
      b->data[i].clear();
    }
    WriteFully(STDOUT_FILENO, b->data[kStdout]);
    b->data[kStdout].clear();
  }
  for (int i = 0; i < kFileStreams; ++i) {
    CloseOwned(sink.fd[i]);
    if (sink.switch_fds) CloseOwned(sink.next_fd[i]);
    sink.next_fd[i] = -1;
  }
  sink.switch_fds = false;
  sink.fd[0] = STDERR_FILENO;
  sink.fd[1] = -1;
  return true;
}

}  // namespace ringproxy::log
