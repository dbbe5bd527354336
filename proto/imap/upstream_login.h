// Logging the client in on its mailbox server (spec §4.2, "upstream login sequence"):
// check the greeting, send ID as the upstream's flavour wants it, then LOGIN (with
// literals, or quoted) or AUTHENTICATE PLAIN as the canonical account, under the
// client's own tag, so the upstream's tagged reply can go to the client as it is.
// Untagged [ALERT] lines are collected for the client; nothing else is parsed.
//
// Round trips are what a login costs on both ends, so where the greeting's
// [CAPABILITY] allows, fewer than Zimbra's nginx makes: literals are non-synchronising
// (LITERAL+, or LITERAL- up to 4,096 bytes), AUTHENTICATE PLAIN carries its response
// (SASL-IR), and a login that is then one write goes out with the ID (`pipeline`): ID
// under the tag "<tag>.ID", so that each reply is known by its tag whatever the order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/byte_stream.h"
#include "core/task.h"
#include "proto/mail_login.h"

namespace ringproxy::imap {

enum class Flavour : uint8_t {
  kZimbra,   // ID with X-ORIGINATING-IP, the client's name/version and X-VIA
  kDovecot,  // ID with x-originating-ip
  kPlain,    // no ID
};

struct UpstreamLoginSettings {
  Flavour flavour = Flavour::kZimbra;
  bool literal_login = true;    // LOGIN {n} literals (Zimbra's imap_literalauth), else quoted
  int64_t timeout_ms = 30'000;  // the whole exchange, greeting to the login's answer
  size_t line_bytes_max = 8192;
  std::string via_name = "ringproxy";  // X-VIA: "...,<local ip>(<via_name>)"
  // The ID's "name" and "version": the proxy's own (the NAME and VERSION of the ID it
  // answers clients with), as Zimbra's proxy sends; the client's go in X-VIA.
  std::string ua_name = "ZCS";
  std::string ua_version = "Unknown Version";
  // When the login fits one write (quoted, LITERAL+/LITERAL- literals, SASL-IR), send
  // ID and the login together, ID under its own tag, instead of waiting for ID's reply.
  bool pipeline = true;
};

struct UpstreamLoginRequest {
  const mail::Credentials* credentials = nullptr;  // tag, mechanism, password, ID
  std::string login;          // the canonical account (plus any /tb-style suffix)
  std::string authzid_login;  // PLAIN with another authorisation identity: its account
  std::string client_ip;
  std::string local_ip;  // the proxy's address on the client's connection
};

using mail::UpstreamLoginOutcome;
using mail::UpstreamLoginStatus;

Task<UpstreamLoginOutcome> LoginUpstream(ByteStream* upstream,
                                         const UpstreamLoginSettings* settings,
                                         const UpstreamLoginRequest* request);

}  // namespace ringproxy::imap
