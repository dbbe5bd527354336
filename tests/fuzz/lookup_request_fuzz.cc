// Properties of the lookup request writer on arbitrary field values: it refuses exactly
// the requests with a control character in a value it would copy as given, and writes
// nothing then; otherwise its output parses back (ParseRequest) into exactly the
// expected headers with the values written, one line per header: no value can start a
// header of its own.
//
// Input: one flags byte (bit 0 keep-alive, bit 1 escape the user, bit 2 admin, bit 3 zx;
// the high nibble minus 2 is the login attempt), then the fields separated by '|':
// path|host|method|user|protocol|client IP|proxy IP|proxy host|auth id|admin user|admin
// pass. Missing fields are empty; a separator cannot occur inside a field (no loss: '|'
// is ordinary header text).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ascii.h"
#include "route/lookup_codec.h"
#include "tests/fuzz/fuzz.h"

using namespace ringproxy::lookup;

namespace {

bool HasControl(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

size_t CountCrLf(std::string_view s) {
  size_t n = 0;
  for (size_t at = s.find("\r\n"); at != std::string_view::npos; at = s.find("\r\n", at + 2)) ++n;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string_view f[11] = {};
  for (std::string_view& field : f) {
    const size_t bar = rest.find('|');
    field = rest.substr(0, bar);
    if (bar == std::string_view::npos) break;
    rest.remove_prefix(bar + 1);
  }
  const std::string_view path = f[0], host = f[1];
  Request r;
  r.method = f[2];
  r.user = f[3];
  r.protocol = f[4];
  r.client_ip = f[5];
  r.proxy_ip = f[6];
  r.proxy_host = f[7];
  r.auth_id = f[8];
  r.admin_user = f[9];
  r.admin_pass = f[10];
  const bool keep_alive = flags & 1;
  r.escape_user = flags & 2;
  r.zimbra_admin = flags & 4;
  r.zimbra_zx = flags & 8;
  r.login_attempt = (flags >> 4) - 2;

  bool bad = HasControl(path) || HasControl(host) || (!r.escape_user && HasControl(r.user));
  for (size_t i = 2; i < 11; ++i) bad = bad || (i != 3 && HasControl(f[i]));
  std::string out;
  const RequestError e = WriteRequest(r, host, path, keep_alive, &out);
  FUZZ_CHECK((e != RequestError::kNone) == bad);
  if (bad) {
    FUZZ_CHECK(out.empty());
    FUZZ_CHECK(HasControl(RefusedValue(r, host, path, e)));
    return 0;
  }

  // What must come back. HTTP does not carry a field value's leading and trailing
  // spaces: the writer sends them, the reader drops them (as every HTTP reader does).
  const std::string user = r.escape_user ? EscapeMailAuth(r.user) : std::string(r.user);
  std::vector<std::pair<std::string_view, std::string_view>> want = {{"Host", host}};
  if (!keep_alive) want.push_back({"Connection", "close"});
  const std::string attempt = std::to_string(r.login_attempt);
  want.insert(want.end(), {{"Auth-Method", r.method},
                           {"Auth-User", user},
                           {"Auth-Pass", kPasswordPlaceholder},
                           {"Auth-Protocol", r.protocol},
                           {"Auth-Login-Attempt", attempt},
                           {"X-Proxy-IP", r.proxy_ip},
                           {"Client-IP", r.client_ip}});
  if (r.zimbra_admin) want.push_back({"Auth-Zimbra-Admin", "True"});
  if (r.zimbra_zx) want.push_back({"Auth-Zimbra-Zx", "True"});
  if (!r.proxy_host.empty()) want.push_back({"X-Proxy-Host", r.proxy_host});
  if (!r.admin_user.empty()) {
    want.push_back({"Auth-Admin-User", r.admin_user});
    want.push_back({"Auth-Admin-Pass", r.admin_pass});
  }
  if (!r.auth_id.empty()) want.push_back({"Auth-ID", r.auth_id});

  const ParsedRequest p = ParseRequest(out);
  if (out.size() > kMaxHead) {  // the reader's limit, not the writer's
    FUZZ_CHECK(p.error == Error::kHeadTooLong);
    return 0;
  }
  FUZZ_CHECK(p.error == Error::kNone);
  FUZZ_CHECK(p.consumed == out.size());
  FUZZ_CHECK(p.method == "GET" && p.target == path);
  FUZZ_CHECK(p.http10 == !keep_alive && p.keep_alive == keep_alive);
  // One line per header: the start line, the headers and the blank line, no more.
  FUZZ_CHECK(CountCrLf(out) == want.size() + 2);
  FUZZ_CHECK(p.header_count == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const Header& h = p.headers[i];
    FUZZ_CHECK(h.name == want[i].first);
    FUZZ_CHECK(h.value == ringproxy::TrimOws(want[i].second));
    FUZZ_CHECK(h.value.find_first_of("\r\n") == std::string_view::npos);
  }
  if (r.escape_user) {
    std::string back;
    FUZZ_CHECK(UnescapeMailAuth(p.Find("Auth-User"), &back) && back == r.user);
  }
  return 0;
}
