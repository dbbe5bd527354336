#include "proto/mail_config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>

#include "absl/container/flat_hash_map.h"
#include "core/ascii.h"
#include "core/log.h"
#include "core/ops.h"
#include "fmt/format.h"
#include "route/config.h"

namespace ringproxy {
namespace {

bool IsMailProtocol(std::string_view p) {
  return p == "imap" || p == "imaps" || p == "pop3" || p == "pop3s";
}

// "off" | "on" | "only" into 0 / 1 / 2; false (with the error) otherwise.
bool ReadStartTls(ConfigTable& t, int* mode) {
  std::string text;
  if (!t.String("starttls", &text)) return false;
  if (text == "off") {
    *mode = 0;
  } else if (text == "on") {
    *mode = 1;
  } else if (text == "only") {
    *mode = 2;
  } else {
    t.Error("starttls", "expected \"off\", \"on\" or \"only\"");
    return false;
  }
  return true;
}

ExtensionPtr ReadMail(ConfigTable& t, MailProtocol protocol, bool implicit_tls) {
  auto s = std::make_shared<MailListenerSettings>();
  s->protocol = protocol;
  s->implicit_tls = implicit_tls;
  const bool imap = protocol == MailProtocol::kImap;
  const bool has_tls = t.Has("tls");
  if (t.Has("upstream")) {
    t.Error("upstream", "mail listeners route each login through [lookup]; no upstream group");
  }
  if (implicit_tls && !has_tls) {
    t.Fail("an implicit-TLS mail listener needs a [listener.tls] table (its certificates)");
  }
  // STARTTLS / STLS: Zimbra's default is "only", which needs certificates.
  int mode = has_tls && !implicit_tls ? 2 : 0;
  if (t.Has("starttls")) {
    int asked = 0;
    if (ReadStartTls(t, &asked)) {
      // "off" is what an implicit-TLS listener has anyway.
      if (implicit_tls && asked != 0) {
        t.Error("starttls", "an implicit-TLS listener has no STARTTLS");
      } else if (!implicit_tls) {
        mode = asked;
        if (mode != 0 && !has_tls) {
          t.Error("starttls", "STARTTLS needs a [listener.tls] table (its certificates)");
        }
      }
    }
  }
  s->imap.starttls = static_cast<imap::StartTlsMode>(mode);
  s->pop3.stls = static_cast<pop3::StlsMode>(mode);

  std::string greeting;
  if (t.Has("greeting") && t.String("greeting", &greeting)) {
    if (greeting.find_first_of("\r\n") != std::string::npos) {
      t.Error("greeting", "must be one line");
    } else {
      s->imap.greeting = greeting;
      s->pop3.greeting = greeting;
    }
  }
  std::vector<std::string> caps;
  if (t.Has("capabilities") && t.StringList("capabilities", &caps)) {
    // What says how to log in is added by the TLS state (a copy of Zimbra's POP3 list
    // names USER): taken as written it would be advertised where login is refused, or
    // twice. Dropped here, for each protocol its own.
    auto by_state = [imap](const std::string& cap) {
      const std::string_view word = std::string_view(cap).substr(0, cap.find(' '));
      return imap ? EqualsIgnoreCase(word, "STARTTLS") || EqualsIgnoreCase(word, "LOGINDISABLED") ||
                        StartsWithIgnoreCase(word, "AUTH=")
                  : EqualsIgnoreCase(word, "USER") || EqualsIgnoreCase(word, "STLS") ||
                        EqualsIgnoreCase(word, "SASL");
    };
    std::erase_if(caps, by_state);
    s->imap.capabilities = caps;
    s->pop3.capabilities = caps;
  }
  bool b = s->imap.auth_plain;
  t.Bool("auth_plain", &b);
  s->imap.auth_plain = s->pop3.auth_plain = b;
  b = s->imap.auth_login;
  t.Bool("auth_login", &b);
  s->imap.auth_login = s->pop3.auth_login = b;
  b = false;
  t.Bool("allow_impersonation", &b);
  s->imap.allow_impersonation = s->pop3.allow_impersonation = b;

  int64_t v = s->imap.idle_timeout_ms;
  t.Int("preauth_timeout_ms", &v, 1, 86'400'000);
  s->imap.idle_timeout_ms = s->pop3.idle_timeout_ms = v;
  v = s->imap.send_timeout_ms;
  t.Int("send_timeout_ms", &v, 1, 3'600'000);
  s->imap.send_timeout_ms = s->pop3.send_timeout_ms = v;
  s->relay_idle_timeout_ms = imap ? 2'100'000 : 600'000;
  t.Int("idle_timeout_ms", &s->relay_idle_timeout_ms, 1, 7 * 86'400'000LL);
  t.Int("connect_timeout_ms", &s->connect_timeout_ms, 1, 3'600'000);
  v = s->imap_login.timeout_ms;
  t.Int("upstream_timeout_ms", &v, 1, 3'600'000);
  s->imap_login.timeout_ms = s->pop3_login.timeout_ms = v;
  t.Int("auth_wait_ms", &s->auth_wait_ms, 0, 3'600'000);
  t.Bool("pass_errors", &s->pass_errors);
  t.Bool("login_retry", &s->login_retry);

  int64_t n = static_cast<int64_t>(s->imap.login_bytes_max);
  t.Int("login_max_bytes", &n, 1, 65536);
  s->imap.login_bytes_max = s->pop3.login_bytes_max = static_cast<size_t>(n);
  n = static_cast<int64_t>(s->imap.password_bytes_max);
  t.Int("password_max_bytes", &n, 1, 65536);
  s->imap.password_bytes_max = s->pop3.password_bytes_max = static_cast<size_t>(n);
  n = static_cast<int64_t>(s->imap.bad_commands_max);
  t.Int("bad_commands_max", &n, 1, 1000);
  s->imap.bad_commands_max = s->pop3.bad_commands_max = static_cast<size_t>(n);
  n = static_cast<int64_t>(s->pop3.line_bytes_max);
  t.Int("line_max_bytes", &n, 64, 1 << 20);
  s->pop3.line_bytes_max = static_cast<size_t>(n);
  s->imap.limits.line_bytes_max = static_cast<size_t>(n);
  s->imap.limits.command_bytes_max = std::max<size_t>(32768, static_cast<size_t>(n));
  // The upstream's tagged reply repeats the client's tag, which may be nearly a line.
  s->imap_login.line_bytes_max = std::max<size_t>(8192, static_cast<size_t>(n) + 1024);

  std::string flavour = "zimbra";
  if (t.Has("flavour") && t.String("flavour", &flavour)) {
    if (flavour == "zimbra") {
      s->imap_login.flavour = imap::Flavour::kZimbra;
      s->pop3_login.send_xoip = true;
    } else if (flavour == "dovecot") {
      s->imap_login.flavour = imap::Flavour::kDovecot;
      s->pop3_login.send_xoip = false;
    } else if (flavour == "plain") {
      s->imap_login.flavour = imap::Flavour::kPlain;
      s->pop3_login.send_xoip = false;
    } else {
      t.Error("flavour", "expected \"zimbra\", \"dovecot\" or \"plain\"");
    }
  }
  t.Bool("literal_login", &s->imap_login.literal_login);
  t.Bool("pipeline_login", &s->imap_login.pipeline);
  // The upstream ID names the proxy as its own ID reply does (spec §4.2).
  for (const auto& [field, value] : s->imap.id_reply) {
    if (EqualsIgnoreCase(field, "name")) s->imap_login.ua_name = value;
    if (EqualsIgnoreCase(field, "version")) s->imap_login.ua_version = value;
  }
  s->greeting_line = imap ? imap::GreetingLine(s->imap) : pop3::GreetingLine(s->pop3);
  return s;
}

// One sink per file for the whole process: the generations that sessions still hold
// write through one descriptor, which each reload opens again in place (rotation).
// Otherwise a session from before a reload would write into the rotated file and keep
// it open for as long as it lasts (days, for IMAP).
std::shared_ptr<AuditSink> SharedAuditSink(ConfigTable& t, const std::string& path) {
  struct Registry {
    std::mutex mu;
    absl::flat_hash_map<std::string, std::weak_ptr<AuditSink>> sinks;
  };
  static Registry* registry = new Registry();  // never destroyed: sinks may outlive main
  std::lock_guard<std::mutex> lock(registry->mu);
  absl::erase_if(registry->sinks, [](const auto& entry) { return entry.second.expired(); });
  auto it = registry->sinks.find(path);
  if (std::shared_ptr<AuditSink> sink = it != registry->sinks.end() ? it->second.lock() : nullptr) {
    if (absl::Status reopened = sink->Reopen(); !reopened.ok()) {
      t.Error("path", std::string(reopened.message()));
      return nullptr;
    }
    return sink;
  }
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    t.Error("path", fmt::format("cannot open '{}': {}", path, strerror(errno)));
    return nullptr;
  }
  auto sink = std::make_shared<AuditSink>(fd, true, path);
  registry->sinks[path] = sink;
  return sink;
}

ExtensionPtr ReadAudit(ConfigTable& t, const Config& /*so_far*/) {
  std::string path;
  if (!t.NonEmptyString("path", &path, /*required=*/true)) return nullptr;
  if (path == "-") return std::make_shared<AuditSink>(STDOUT_FILENO, false);
  if (t.checking()) {  // a check creates no file
    t.CheckAppendable("path", path);
    return std::make_shared<AuditSink>(-1, false);
  }
  return SharedAuditSink(t, path);
}

void CheckMailListeners(const Config& config, ConfigErrors& errors) {
  if (config.sections.Find(kLookupTable) != nullptr) return;
  for (const ListenerConfig& l : config.listeners) {
    if (IsMailProtocol(l.protocol)) {
      errors.Add(fmt::format("listener {}", l.name),
                 "a mail listener needs a [lookup] section (where users' mailboxes are)");
    }
  }
}

}  // namespace

AuditSink::~AuditSink() {
  if (owned_) close(fd_);
}

Task<void> AuditSink::Write(std::string line) const {
  if (fd_ == STDOUT_FILENO && !owned_) {
    // Through the log's writer thread: standard output may share a pipe with the log
    // and the access log, and a write of ours would land inside one of their batches.
    log::StandardOutput(line);
    co_return;
  }
  std::span<const std::byte> data = AsBytes(line);
  while (!data.empty()) {
    // Offset -1: the file's position, which O_APPEND keeps at its end.
    IoResult r = co_await WriteAt(fd_, data, static_cast<uint64_t>(-1), Deadline::AfterMs(10'000));
    if (!r.ok() || r.res == 0) co_return;
    data = data.subspan(r.value());
  }
}

absl::Status AuditSink::Reopen() const {
  if (!owned_ || path_.empty()) return absl::OkStatus();
  const int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::UnavailableError(
        fmt::format("audit: cannot open '{}': {}", path_, strerror(errno)));
  }
  // dup2 swaps the file under the number atomically: writers never see a closed fd.
  const bool ok = dup3(fd, fd_, O_CLOEXEC) >= 0;
  const int saved = errno;
  close(fd);
  if (!ok) {
    return absl::InternalError(fmt::format("audit: reopening '{}': {}", path_, strerror(saved)));
  }
  return absl::OkStatus();
}

absl::Status ReopenAudit(const Config& config) {
  const auto* sink = config.sections.Get<AuditSink>(kAuditTable);
  return sink != nullptr ? sink->Reopen() : absl::OkStatus();
}

ExtensionPtr ReadImapListener(ConfigTable& t, const Config& /*so_far*/) {
  return ReadMail(t, MailProtocol::kImap, false);
}
ExtensionPtr ReadImapsListener(ConfigTable& t, const Config& /*so_far*/) {
  return ReadMail(t, MailProtocol::kImap, true);
}
ExtensionPtr ReadPop3Listener(ConfigTable& t, const Config& /*so_far*/) {
  return ReadMail(t, MailProtocol::kPop3, false);
}
ExtensionPtr ReadPop3sListener(ConfigTable& t, const Config& /*so_far*/) {
  return ReadMail(t, MailProtocol::kPop3, true);
}

void RegisterMailConfig(ConfigSchema* schema) {
  schema->AddSection(std::string(kAuditTable), &ReadAudit);
  schema->AddCheck(&CheckMailListeners);
}

}  // namespace ringproxy
