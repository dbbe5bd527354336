// Login throttling as Zimbra's proxy does it (spec §3), with counters in memcached so
// that every core and every proxy sharing the memcached pool counts together:
//  - per client IP and protocol, at connection time, before the greeting;
//  - per account: a read-only check before the upstream login and a count after the
//    upstream accepted it, both under the canonical account name (the Zimbra fork
//    checks the typed login but counts the canonical one).
// A counter is one INCREMENT that creates the key with initial value 1 and the window
// as expiry: one round trip. memcached creates it as a miss then an add, so of two
// proxies creating one counter at once, one is told NOT_STORED: it increments again
// (the key exists now). memcached unreachable: allowed (by default; logged once per
// change) or refused (fail_open = false).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cache/memcache_client.h"
#include "core/socket.h"
#include "core/task.h"

namespace ringproxy {

// An IPv4 or IPv6 network ("10.0.0.0/8", "2001:db8::/32", or one address).
class Cidr {
 public:
  static absl::StatusOr<Cidr> Parse(std::string_view text);
  bool Contains(std::string_view ip) const;
  bool operator==(const Cidr&) const = default;

 private:
  int family_ = 0;
  uint8_t bytes_[16] = {};
  int prefix_ = 0;
};

struct ThrottleOptions {
  int ip_max = 0;  // generic per-IP limit; 0 = off
  uint32_t ip_ttl_s = 3600;
  int imap_max = 0;  // > 0 overrides ip_max for IMAP (with imap_ttl_s)
  uint32_t imap_ttl_s = 3600;
  int pop3_max = 0;
  uint32_t pop3_ttl_s = 3600;
  std::string ip_reject_message = "Login rejected from this IP";
  std::vector<Cidr> whitelist;  // exempt from the IP throttle
  uint32_t whitelist_ttl_s = 300;
  int user_max = 0;  // successful logins per account per window; 0 = off
  uint32_t user_ttl_s = 3600;
  std::string user_reject_message = "Login rejected for this user";
  bool fail_open = true;
  bool operator==(const ThrottleOptions&) const = default;
};

enum class ThrottleVerdict : uint8_t { kAllow, kDeny };

struct ThrottleDecision {
  ThrottleVerdict verdict = ThrottleVerdict::kAllow;
  std::string message;       // for the client's BYE / -ERR when denied
  uint64_t count = 0;        // the counter after this attempt (0 when not counted)
  bool unavailable = false;  // memcached could not be asked

  bool allowed() const { return verdict == ThrottleVerdict::kAllow; }
};

class Throttle {
 public:
  Throttle(ThrottleOptions options, MemcacheClient* memcache);

  // protocol: "imap" or "pop3" (the "ssl" variants count with their protocol).
  Task<ThrottleDecision> CheckIp(std::string protocol, std::string client_ip);
  // Before the upstream login: is the account already over its limit? (no count)
  Task<ThrottleDecision> CheckUser(std::string account);
  // After the upstream accepted the login: count it; over the limit -> deny anyway.
  Task<ThrottleDecision> CountUserLogin(std::string account);

  const ThrottleOptions& options() const { return options_; }

 private:
  ThrottleDecision Unavailable(const std::string& message);
  // Logs when memcached stops or starts answering as a counter store should: a failed
  // request or an error status (a miss is an answer). Returns whether it did.
  bool NoteMemcacheState(const McReply& r);
  // INCREMENT by one, creating the key at 1 with `ttl_s`.
  Task<McReply> Count(std::string key, uint32_t ttl_s);

  ThrottleOptions options_;
  MemcacheClient* memcache_;
  bool memcache_ok_ = true;
  int64_t last_status_log_ns_ = 0;  // the last error status logged
};

}  // namespace ringproxy
