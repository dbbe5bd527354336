// Whose mailbox a web request is for (spec zimbra-proxy.md §5.1, the zmauth balancer's
// order, first match wins): a REST path (/home/<user>/, /home/~<user>/, and the same
// under /service), ActiveSync and EWS (the Basic user, DOMAIN\user read as user@DOMAIN,
// else the User= argument), CalDAV paths (/dav/<user>/, /principals/users/<user>/),
// the ZM_AUTH_TOKEN cookie or the zauthtoken= argument (the token's id), a JWT's sub
// (Bearer, or zjwt=). The admin console routes only by ZM_ADMIN_AUTH_TOKEN. Nothing
// here is verified: the mailbox server checks credentials and tokens; the proxy only
// picks where to send the request. Pure; the HTTP session calls it (route_by_user).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/http/head.h"

namespace ringproxy::http {

enum class RouteBy : uint8_t {
  kNone,      // no user found: the group's balancer decides
  kUsername,  // a login name (the lookup's Auth-Method "username")
  kZimbraId,  // an account id (Auth-Method "zimbraId")
};

enum class UserSource : uint8_t {
  kNone,
  kRestPath,
  kActiveSync,
  kEws,
  kCalDav,
  kAuthTokenCookie,
  kAuthTokenArgument,
  kJwt,
  kAdminTokenCookie,
};

std::string_view UserSourceName(UserSource s);

struct UserRoute {
  RouteBy by = RouteBy::kNone;
  UserSource source = UserSource::kNone;
  std::string user;  // percent-decoded login, or the account id
};

// The user of a request on a web listener (`admin`: the admin console's); `target` is
// the origin-form target after rewrites (the head's target may be absolute-form).
UserRoute FindUserRoute(const RequestHead& head, std::string_view target, bool admin);

// A Zimbra auth token ("<key version>_<hmac>_<hex of key=len:value;...>"): its `id`
// field, or "" when the token does not have that form.
std::string AuthTokenId(std::string_view token);

// A JWT's `sub` claim (the payload is base64url JSON; no signature is checked), or "".
std::string JwtSubject(std::string_view jwt);

// The raw value of the first query argument `name` of an origin-form target (ASCII
// case-insensitive), if any.
bool QueryArgument(std::string_view target, std::string_view name, std::string_view* value);
// The target (or a URL: a Referer) with the values of its credential arguments
// (zauthtoken, zjwt, names compared percent-decoded: bearer tokens, as good as a
// password while they last) replaced by "redacted", for the logs; false (and `*out`
// untouched) when it has none.
bool WithoutTokens(std::string_view target, std::string* out);
// The cookie `name` (exact) from any Cookie field.
bool CookieValue(const RequestHead& head, std::string_view name, std::string_view* value);

// An encoded CR or LF (%0D, %0A, any case) in the target: Zimbra answers 403.
bool HasEncodedCrLf(std::string_view target);

}  // namespace ringproxy::http
