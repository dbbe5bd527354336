#include "route/throttle.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "cache/memcache_codec.h"
#include "core/deadline.h"
#include "core/log.h"
#include "fmt/format.h"
#include "route/keys.h"

namespace ringproxy {
namespace {

bool ParseIp(std::string_view text, int* family, uint8_t out[16]) {
  std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), out) == 1) {
    *family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out) == 1) {
    *family = AF_INET6;
    return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<Cidr> Cidr::Parse(std::string_view text) {
  Cidr c;
  size_t slash = text.find('/');
  if (!ParseIp(text.substr(0, slash), &c.family_, c.bytes_)) {
    return absl::InvalidArgumentError(fmt::format("bad address '{}'", text));
  }
  const int bits = c.family_ == AF_INET ? 32 : 128;
  c.prefix_ = bits;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), c.prefix_);
    if (ec != std::errc() || end != p.data() + p.size() || c.prefix_ < 0 || c.prefix_ > bits) {
      return absl::InvalidArgumentError(fmt::format("bad prefix length in '{}'", text));
    }
  }
  // "::ffff:10.0.0.0/104" names IPv4 clients, which are seen as IPv4: match them so.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (c.family_ == AF_INET6 && c.prefix_ >= 96 && memcmp(c.bytes_, kMapped, 12) == 0) {
    c.family_ = AF_INET;
    memmove(c.bytes_, c.bytes_ + 12, 4);
    memset(c.bytes_ + 4, 0, 12);
    c.prefix_ -= 96;
  }
  return c;
}

bool Cidr::Contains(std::string_view ip) const {
  int family = 0;
  uint8_t b[16];
  if (!ParseIp(ip, &family, b) || family != family_) return false;
  int full = prefix_ / 8;
  if (memcmp(b, bytes_, static_cast<size_t>(full)) != 0) return false;
  int rest = prefix_ % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (b[full] & mask) == (bytes_[full] & mask);
}

Throttle::Throttle(ThrottleOptions options, MemcacheClient* memcache)
    : options_(std::move(options)), memcache_(memcache) {}

bool Throttle::NoteMemcacheState(const McReply& r) {
  const char* what = options_.fail_open ? "allowed" : "refused";
  // Reachability is one state for all of memcached; an error status belongs to one key
  // (a counter holding text), so it is logged on its own, once a minute at most.
  if (r.ok() != memcache_ok_) {
    memcache_ok_ = r.ok();
    if (r.ok()) {
      RP_LOG(kInfo, "throttle: memcached answers again; counting resumes");
    } else {
      RP_LOG(kWarn, "throttle: memcached unavailable; logins are {} without counting", what);
    }
  }
  if (!r.ok()) return false;
  if (r.status == 0 || r.status == static_cast<uint16_t>(memcache::Status::kKeyNotFound)) {
    return true;
  }
  const int64_t now = MonotonicNowNs();
  if (last_status_log_ns_ == 0 || now - last_status_log_ns_ >= 60'000'000'000) {
    last_status_log_ns_ = now;
    RP_LOG(kWarn,
           "throttle: memcached answers '{}' (status 0x{:02x}); logins it concerns are {} "
           "without counting",
           memcache::StatusName(r.status), r.status, what);
  }
  return false;
}

ThrottleDecision Throttle::Unavailable(const std::string& message) {
  ThrottleDecision d;
  d.unavailable = true;
  if (!options_.fail_open) {
    d.verdict = ThrottleVerdict::kDeny;
    d.message = message;
  }
  return d;
}

Task<McReply> Throttle::Count(std::string key, uint32_t ttl_s) {
  McReply r = co_await memcache_->Increment(key, 1, 1, ttl_s);
  // Another proxy created the counter between memcached's miss and its add.
  for (int again = 0;
       again < 2 && r.ok() && r.status == static_cast<uint16_t>(memcache::Status::kItemNotStored);
       ++again) {
    r = co_await memcache_->Increment(key, 1, 1, ttl_s);
  }
  co_return r;
}

Task<ThrottleDecision> Throttle::CheckIp(std::string protocol, std::string client_ip) {
  const bool pop3 = protocol.rfind("pop3", 0) == 0;
  const int proto_max = pop3 ? options_.pop3_max : options_.imap_max;
  const int max = proto_max > 0 ? proto_max : options_.ip_max;
  // The counter is per protocol, and so is its window, whichever limit applies: as in
  // Zimbra's proxy, which shares these counters (only the limit falls back to ip_max).
  const uint32_t ttl = pop3 ? options_.pop3_ttl_s : options_.imap_ttl_s;
  if (max <= 0 || memcache_ == nullptr) co_return ThrottleDecision{};
  if (!options_.whitelist.empty()) {
    // The memo saves the CIDR walk for every proxy sharing memcached (Zimbra's key).
    std::string memo_key = keys::WhitelistMemo(client_ip);
    McReply memo = co_await memcache_->Get(memo_key);
    NoteMemcacheState(memo);
    bool whitelisted;
    if (memo.hit()) {
      whitelisted = memo.value == "1";
    } else {
      whitelisted = std::any_of(options_.whitelist.begin(), options_.whitelist.end(),
                                [&](const Cidr& c) { return c.Contains(client_ip); });
      if (memo.ok()) {
        (void)co_await memcache_->Add(std::move(memo_key), whitelisted ? "1" : "0",
                                      options_.whitelist_ttl_s);
      }
    }
    if (whitelisted) co_return ThrottleDecision{};
  }
  McReply r = co_await Count(keys::IpThrottle(pop3 ? "pop3" : "imap", client_ip), ttl);
  if (!NoteMemcacheState(r)) co_return Unavailable(options_.ip_reject_message);
  ThrottleDecision d;
  d.count = r.counter;
  if (r.counter > static_cast<uint64_t>(max)) {
    d.verdict = ThrottleVerdict::kDeny;
    d.message = options_.ip_reject_message;
  }
  co_return d;
}

Task<ThrottleDecision> Throttle::CheckUser(std::string account) {
  if (options_.user_max <= 0 || memcache_ == nullptr) co_return ThrottleDecision{};
  McReply r = co_await memcache_->Get(keys::UserThrottle(account));
  if (!NoteMemcacheState(r)) co_return Unavailable(options_.user_reject_message);
  ThrottleDecision d;
  if (!r.hit()) co_return d;
  uint64_t count = 0;
  auto [end, ec] = std::from_chars(r.value.data(), r.value.data() + r.value.size(), count);
  // memcached stores counters as decimal text; anything else is not ours: allow.
  if (ec != std::errc() || end != r.value.data() + r.value.size()) co_return d;
  d.count = count;
  // At the limit already: this login would be one too many, so stop it before the
  // upstream sees the password.
  if (count >= static_cast<uint64_t>(options_.user_max)) {
    d.verdict = ThrottleVerdict::kDeny;
    d.message = options_.user_reject_message;
  }
  co_return d;
}

Task<ThrottleDecision> Throttle::CountUserLogin(std::string account) {
  if (options_.user_max <= 0 || memcache_ == nullptr) co_return ThrottleDecision{};
  McReply r = co_await Count(keys::UserThrottle(account), options_.user_ttl_s);
  if (!NoteMemcacheState(r)) co_return Unavailable(options_.user_reject_message);
  ThrottleDecision d;
  d.count = r.counter;
  if (r.counter > static_cast<uint64_t>(options_.user_max)) {
    d.verdict = ThrottleVerdict::kDeny;
    d.message = options_.user_reject_message;
  }
  co_return d;
}

}  // namespace ringproxy
