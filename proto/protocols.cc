#include "proto/protocols.h"

#include "core/check.h"
#include "proto/http_proxy.h"
#include "proto/mail_config.h"
#include "proto/mail_proxy.h"
#include "proto/tcp_proxy.h"
#include "route/config.h"
#include "tls/config.h"

namespace ringproxy {
namespace {

const ProtocolSpec* const kProtocols[] = {
    &kTcpProtocol,   &kImapProtocol, &kImapsProtocol, &kPop3Protocol,
    &kPop3sProtocol, &kHttpProtocol, &kHttpsProtocol,
};

}  // namespace

const ConfigSchema& ProductSchema() {
  static const ConfigSchema* schema = [] {
    auto* s = new ConfigSchema();
    for (const ProtocolSpec* p : kProtocols)
      s->AddListenerProtocol(std::string(p->name), p->reader);
    RegisterTlsConfig(s);
    RegisterRouteConfig(s);
    RegisterMailConfig(s);
    return s;
  }();
  return *schema;
}

SessionEntry SessionFor(std::string_view protocol) {
  for (const ProtocolSpec* p : kProtocols) {
    if (p->name == protocol) return p->session;
  }
  RP_CHECK(false && "a protocol the schema accepted has no session");
  return nullptr;
}

}  // namespace ringproxy
