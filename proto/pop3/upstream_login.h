// Logging the client in on its mailbox server over POP3 (spec §4.3): check the "+OK"
// greeting, send XOIP with the client's address when the upstream is Zimbra, then
// USER/PASS or AUTH PLAIN as the canonical account. The final "+OK" line is for the
// client; nothing else is parsed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/byte_stream.h"
#include "core/task.h"
#include "proto/mail_login.h"

namespace ringproxy::pop3 {

struct UpstreamLoginSettings {
  bool send_xoip = true;        // Zimbra's XOIP (zimbraReverseProxySendPop3Xoip)
  int64_t timeout_ms = 30'000;  // the whole exchange, greeting to the login's answer
  size_t line_bytes_max = 4096;
};

struct UpstreamLoginRequest {
  const mail::Credentials* credentials = nullptr;
  std::string login;          // the canonical account
  std::string authzid_login;  // PLAIN with another authorisation identity: its account
  std::string client_ip;
};

Task<mail::UpstreamLoginOutcome> LoginUpstream(ByteStream* upstream,
                                               const UpstreamLoginSettings* settings,
                                               const UpstreamLoginRequest* request);

}  // namespace ringproxy::pop3
