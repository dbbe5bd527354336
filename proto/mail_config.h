// The mail listeners' settings: `protocol = "imap" | "imaps" | "pop3" | "pop3s"` with
// their keys (read by proto/mail_config.cc into MailListenerSettings), and the [audit]
// section. docs/configuration.md lists every key with its zimbraReverseProxy* attribute.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "core/config.h"
#include "core/task.h"
#include "proto/imap/preauth.h"
#include "proto/imap/upstream_login.h"
#include "proto/pop3/preauth.h"
#include "proto/pop3/upstream_login.h"

namespace ringproxy {

inline constexpr std::string_view kAuditTable = "audit";

enum class MailProtocol : uint8_t { kImap, kPop3 };

struct MailListenerSettings : ConfigExtension {
  MailProtocol protocol = MailProtocol::kImap;
  bool implicit_tls = false;  // imaps / pop3s: TLS from the first byte
  imap::PreauthSettings imap;
  pop3::PreauthSettings pop3;
  imap::UpstreamLoginSettings imap_login;
  pop3::UpstreamLoginSettings pop3_login;
  int64_t connect_timeout_ms = 120'000;  // zimbraReverseProxyConnectTimeout
  int64_t relay_idle_timeout_ms = 0;     // after login (IMAP 2,100 s, POP3 600 s)
  int64_t auth_wait_ms = 10'000;         // zimbraReverseProxyAuthWaitInterval
  bool pass_errors = true;               // zimbraReverseProxyPassErrors
  bool login_retry = false;              // another LOGIN on the same connection
  std::string greeting_line;             // "* OK ...\r\n" / "+OK ...\r\n"
  // "imap" / "pop3", what the throttle counts and the lookup is asked for ("imapssl"
  // / "pop3ssl" with TLS to the upstream).
  std::string_view name() const { return protocol == MailProtocol::kImap ? "imap" : "pop3"; }
};

// The [audit] section: one JSON line per login attempt, to its own file (or standard
// output with "-"), opened when the config is read (a reload reopens it: rotation;
// `--check` only checks that it could be).
class AuditSink : public ConfigExtension {
 public:
  AuditSink(int fd, bool owned, std::string path = {})
      : fd_(fd), owned_(owned), path_(std::move(path)) {}
  ~AuditSink() override;
  // One line (ending in '\n') appended through the ring; never blocks the reactor.
  Task<void> Write(std::string line) const;
  // Opens the path again onto the same descriptor (rotation: every reload, the sink
  // being shared by all generations that name the file; a drain's SIGHUP). Lines being
  // written land in the old file or the new one. Nothing to do for standard output.
  absl::Status Reopen() const;

 private:
  int fd_;
  bool owned_;
  std::string path_;
};

// The running configuration's [audit] file, reopened; OK without one.
absl::Status ReopenAudit(const Config& config);

ExtensionPtr ReadImapListener(ConfigTable& t, const Config& so_far);
ExtensionPtr ReadImapsListener(ConfigTable& t, const Config& so_far);
ExtensionPtr ReadPop3Listener(ConfigTable& t, const Config& so_far);
ExtensionPtr ReadPop3sListener(ConfigTable& t, const Config& so_far);

// [audit] and the check that mail listeners have a [lookup] section.
void RegisterMailConfig(ConfigSchema* schema);

}  // namespace ringproxy
