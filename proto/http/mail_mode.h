// Zimbra's web mail modes (spec zimbra-proxy.md §5.3, zimbraReverseProxyMailMode): which
// requests a listener sends to the other scheme instead of proxying them.
//  - both: none (also what the "http" and "https" modes are: only that listener exists).
//  - redirect: on HTTP, every request, 302 to https://host[:port]/target.
//  - mixed: on HTTP, requests without a ZM_AUTH_TOKEN cookie, with loginOp=logout, or
//    whose path ends with "changepass" go to HTTPS with zminitmode=http appended (302);
//    on HTTPS, a request with the cookie and zminitmode=http goes back to HTTP with that
//    argument removed (302), unless it is one HTTP sends to HTTPS (no loop).
// Pure; the HTTP session asks it before choosing a virtual server.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/http/head.h"

namespace ringproxy::http {

enum class MailMode : uint8_t { kBoth, kRedirect, kMixed };

struct ModeRedirect {
  int status = 0;        // 0: proxy the request
  std::string location;  // else the absolute URL to send the client to
};

// `target` is origin-form; `host` the request's Host (a port in it is replaced);
// `other_port` the listener of the other scheme (443 or 80 are left out of the URL).
ModeRedirect MailModeRedirect(MailMode mode, bool https, const RequestHead& head,
                              std::string_view target, std::string_view host, int other_port);

}  // namespace ringproxy::http
