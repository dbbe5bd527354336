#include "proto/daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

#include "build_info.h"
#include "core/config.h"
#include "core/log.h"
#include "core/reactor.h"
#include "core/signals.h"
#include "core/status_util.h"
#include "fmt/format.h"
#include "proto/mail_config.h"
#include "proto/protocols.h"
#include "proto/server.h"
#include "tls/library.h"
#include "tls/ticket_keys.h"

namespace ringproxy {
namespace {

std::string ProbeIoUring() {
  absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(ReactorOptions{});
  if (!r.ok()) return fmt::format("unavailable ({})", MessageOf(r.status()));
  unsigned flags = (*r)->setup_flags();
  return fmt::format("SINGLE_ISSUER {}, DEFER_TASKRUN {}",
                     (flags & IORING_SETUP_SINGLE_ISSUER) ? "yes" : "no",
                     (flags & IORING_SETUP_DEFER_TASKRUN) ? "yes" : "no");
}

log::Options LogOptionsOf(const Config& c) {
  return log::Options{c.log.file, c.log.level, c.log.access_file};
}

// The product's config, and a check that it serves something: an empty file (one being
// rewritten at the moment of a SIGHUP) would otherwise be a valid config that stops
// every listener. Its CPUs are checked here too: a reload keeps [runtime] until the next
// start, which must not fail on a file the reload took.
absl::StatusOr<ConfigPtr> LoadDaemonConfig(const std::string& path,
                                           ConfigUse use = ConfigUse::kRun) {
  absl::StatusOr<ConfigPtr> config = LoadConfig(path, ProductSchema(), use);
  if (!config.ok()) return config;
  if ((*config)->listeners.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: no [[listener]]: a configuration must define at least one", path));
  }
  if (absl::StatusOr<std::vector<int>> cpus = ResolveShardCpus((*config)->runtime); !cpus.ok()) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", path, MessageOf(cpus.status())));
  }
  return config;
}

void LogErrorLines(std::string_view errors) {
  // One log line per error: a line break inside a line is escaped.
  while (!errors.empty()) {
    const size_t end = std::min(errors.find('\n'), errors.size());
    RP_LOG(kError, "  {}", errors.substr(0, end));
    errors.remove_prefix(std::min(end + 1, errors.size()));
  }
}

// The log files and the audit file of the running configuration, opened again.
absl::Status ReopenRunningLogs(const Config& running) {
  absl::Status reopened = log::Reconfigure(LogOptionsOf(running));
  if (absl::Status audit = ReopenAudit(running); !audit.ok() && reopened.ok()) reopened = audit;
  return reopened;
}

// A reload's read of the file, on a thread of its own: it can wait (names to resolve, a
// file on a FIFO or a slow disk), and a stop signal must be heard meanwhile.
class ConfigReader {
 public:
  ConfigReader() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~ConfigReader() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  ConfigReader(const ConfigReader&) = delete;
  ConfigReader& operator=(const ConfigReader&) = delete;

  bool busy() const { return thread_.joinable(); }
  // Readable once the read is done (-1 while none runs: poll skips it).
  int fd() const { return busy() ? fd_ : -1; }
  void Start(const std::string& path) {
    // The first config with session tickets fixes the ticket keys, only if it is applied.
    had_ticket_keys_ = ProcessTicketKeys() != nullptr;
    thread_ = std::thread([this, path] {
      result_ = LoadDaemonConfig(path);
      const uint64_t one = 1;
      (void)!write(fd_, &one, sizeof(one));
    });
  }
  absl::StatusOr<ConfigPtr> Take() {
    thread_.join();
    uint64_t n;
    (void)!read(fd_, &n, sizeof(n));
    return std::move(result_);
  }
  bool had_ticket_keys() const { return had_ticket_keys_; }

 private:
  int fd_;
  std::thread thread_;
  absl::StatusOr<ConfigPtr> result_ = absl::UnknownError("not read");
  bool had_ticket_keys_ = false;
};

// SIGHUP's second half, once the file is read: the new config, or the running one when
// anything in it fails. The log files are opened again either way (rotation).
void ApplyReload(absl::StatusOr<ConfigPtr> next, bool had_ticket_keys, Server* server,
                 ConfigPtr* running) {
  absl::Status failed;
  // The new log files are opened before the server takes the config (a file that cannot
  // be opened refuses the reload), and used only once it has.
  std::optional<log::PendingFiles> logs;
  if (!next.ok()) {
    failed = next.status();
  } else if (absl::StatusOr<log::PendingFiles> opened = log::Prepare(LogOptionsOf(**next));
             !opened.ok()) {
    failed = opened.status();
  } else {
    logs = std::move(*opened);
    if (absl::Status applied = server->Reload(*next); !applied.ok()) failed = applied;
  }
  if (failed.ok()) {
    log::Commit(&*logs);
    *running = *next;
    RP_LOG(kInfo, "reload done: {} listeners", (*running)->listeners.size());
    return;
  }
  if (logs.has_value()) log::Discard(&*logs);
  if (!had_ticket_keys) ForgetTicketKeys();
  absl::Status reopened = ReopenRunningLogs(**running);
  std::string_view errors = MessageOf(failed);
  if (errors.find('\n') == std::string_view::npos) {
    RP_LOG(kError, "reload failed, keeping the running configuration: {}", errors);
  } else {
    RP_LOG(kError, "reload failed, keeping the running configuration:");
    LogErrorLines(errors);
  }
  if (!reopened.ok()) RP_LOG(kError, "reload: the running log files: {}", MessageOf(reopened));
}

}  // namespace

std::string VersionText() {
  utsname u{};
  uname(&u);
  TlsLibraryInfo tls = GetTlsLibraryInfo();
  std::string asm_text = tls.aesni && tls.sp_asm
                             ? fmt::format("assembly: AES-NI yes, Intel asm {}, SP x86_64 asm yes",
                                           tls.intel_asm ? "yes" : "no")
                             : "assembly: NO (slow C build)";
  return fmt::format(
      "ringproxy {}\n"
      "  build      {} {}{}\n"
      "  liburing   {}\n"
      "  abseil     {}\n"
      "  fmt        {}\n"
      "  toml++     {}\n"
      "  wolfSSL    {} ({})\n"
      "  kernel     {} {} (io_uring: {})\n",
      RINGPROXY_VERSION, RINGPROXY_COMPILER, RINGPROXY_BUILDTYPE,
      std::string_view(RINGPROXY_SANITIZE) == "none"
          ? ""
          : fmt::format(", sanitize={}", RINGPROXY_SANITIZE),
      RINGPROXY_LIBURING_VERSION, RINGPROXY_ABSEIL_VERSION, RINGPROXY_FMT_VERSION,
      RINGPROXY_TOMLPP_VERSION, tls.version, asm_text, u.sysname, u.release, ProbeIoUring());
}

int CheckConfigFile(const std::string& path) {
  absl::Status tls = InitTlsLibrary();
  if (!tls.ok()) {
    fprintf(stderr, "%s\n", std::string(MessageOf(tls)).c_str());
    return 1;
  }
  absl::StatusOr<ConfigPtr> config = LoadDaemonConfig(path, ConfigUse::kCheck);
  if (!config.ok()) {
    fprintf(stderr, "%s\n", std::string(MessageOf(config.status())).c_str());
    return 1;
  }
  const size_t shards = ResolveShardCpus((*config)->runtime).value().size();  // checked above
  printf("%s: ok (%zu listeners, %zu upstream groups, %zu shards)\n", path.c_str(),
         (*config)->listeners.size(), (*config)->upstreams.size(), shards);
  return 0;
}

int RunDaemon(const std::string& config_path) {
  // First: before any thread starts, so every shard inherits the blocked mask, and
  // before the config, whose reading can wait (names to resolve, files to open): a
  // SIGHUP from logrotate then must not end the process, and a SIGTERM drains.
  absl::StatusOr<SignalFd> signals = SignalFd::Create({SIGTERM, SIGINT, SIGHUP, SIGUSR1});
  if (!signals.ok()) {
    fprintf(stderr, "%s\n", std::string(MessageOf(signals.status())).c_str());
    return 1;
  }
  // Before the config: reading [listener.tls] builds TLS contexts.
  absl::Status tls = InitTlsLibrary();
  if (!tls.ok()) {
    fprintf(stderr, "%s\n", std::string(MessageOf(tls)).c_str());
    return 1;
  }
  absl::StatusOr<ConfigPtr> config = LoadDaemonConfig(config_path);
  if (!config.ok()) {
    fprintf(stderr, "%s\n", std::string(MessageOf(config.status())).c_str());
    return 1;
  }
  absl::Status status = log::Start(LogOptionsOf(**config));
  if (!status.ok()) {
    fprintf(stderr, "%s\n", std::string(MessageOf(status)).c_str());
    return 1;
  }
  RP_LOG(kInfo, "ringproxy {} starting with {}", RINGPROXY_VERSION, config_path);
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(*config);
  if (!server.ok()) {
    RP_LOG(kError, "cannot start: {}", MessageOf(server.status()));
    log::Shutdown();
    return 1;
  }
  RP_LOG(kInfo, "ready: {} listeners", (*config)->listeners.size());
  ConfigPtr running = *config;
  bool draining = false;
  ConfigReader reader;
  bool read_again = false;  // a SIGHUP came while the file was being read
  for (;;) {
    pollfd fds[3] = {
        {signals->fd(), POLLIN, 0}, {(*server)->done_fd(), POLLIN, 0}, {reader.fd(), POLLIN, 0}};
    int n = poll(fds, 3, -1);
    if (n < 0) continue;  // EINTR
    if (fds[1].revents != 0) break;
    if (fds[2].revents != 0) {
      absl::StatusOr<ConfigPtr> next = reader.Take();
      if (draining) {
        // Shards that finished their drain would never serve a new listener's socket.
        RP_LOG(kWarn, "the configuration was read during a drain: not applied");
        if (!reader.had_ticket_keys()) ForgetTicketKeys();
        if (absl::Status logs = ReopenRunningLogs(*running); !logs.ok()) {
          RP_LOG(kError, "reload: the running log files: {}", MessageOf(logs));
        }
      } else {
        ApplyReload(std::move(next), reader.had_ticket_keys(), server->get(), &running);
        if (std::exchange(read_again, false)) {
          RP_LOG(kInfo, "SIGHUP: reloading {} (asked for during the last reload)", config_path);
          reader.Start(config_path);
        }
      }
      continue;
    }
    if (fds[0].revents == 0) continue;
    int sig = signals->ReadOne();
    switch (sig) {
      case SIGTERM:
      case SIGINT:
        if (!draining) {
          draining = true;
          // Not inside RP_LOG: its arguments are not evaluated when info is off.
          const int64_t drain_ms = (*server)->Drain();
          RP_LOG(kInfo, "{}: stopping accepts and draining (up to {} ms)",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", drain_ms);
        } else {
          RP_LOG(kWarn, "second stop signal: closing all sessions now");
          (*server)->StopNow();
        }
        break;
      case SIGHUP:
        if (draining) {
          // Shards that finished their drain would never serve a new listener's socket.
          RP_LOG(kWarn, "SIGHUP while draining: the configuration is not reloaded");
          if (absl::Status logs = ReopenRunningLogs(*running); !logs.ok()) {
            RP_LOG(kError, "reload: the running log files: {}", MessageOf(logs));
          }
        } else if (reader.busy()) {
          read_again = true;  // the file may have changed since this read began
        } else {
          RP_LOG(kInfo, "SIGHUP: reloading {}", config_path);
          reader.Start(config_path);
        }
        break;
      case SIGUSR1:
        // Asked for: written whatever log.level is (an info line).
        log::Write(log::Level::kInfo, "stats {}", (*server)->StatsSummary());
        break;
      default:
        break;
    }
  }
  (*server)->Wait();
  // The run's totals, whatever log.level is (as SIGUSR1's line).
  log::Write(log::Level::kInfo, "stopped; stats {}", (*server)->StatsSummary());
  const bool reading = reader.busy();
  if (reading) RP_LOG(kWarn, "exiting with a configuration read still waiting: abandoned");
  server->reset();
  log::Shutdown();
  // The read may wait for ever (a FIFO): the process ends without it, and without the
  // static destructors that thread could still be using.
  if (reading) std::_Exit(0);
  return 0;
}

}  // namespace ringproxy
