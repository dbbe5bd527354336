// The mail listeners: IMAP and POP3, plain (with STARTTLS / STLS) and implicit TLS. A
// session throttles the client's IP, runs the dialogue before login, resolves the
// user's route (per-core cache, memcached, lookup service), connects to the mailbox
// server (TLS when configured), logs in there as the canonical account, hands the
// upstream's answer to the client and becomes a pump. One audit line per login attempt.
#pragma once

#include "proto/protocols.h"

namespace ringproxy {

extern const ProtocolSpec kImapProtocol;
extern const ProtocolSpec kImapsProtocol;
extern const ProtocolSpec kPop3Protocol;
extern const ProtocolSpec kPop3sProtocol;

}  // namespace ringproxy
