// Rewrite rules of a virtual server, applied in order to a request's origin-form
// target before its location is chosen (as nginx's server-level `rewrite`). A rule's
// RE2 pattern is searched in the path (unanchored; the query is not part of it); on a
// match the path becomes the replacement with $0..$9 (the captures), $scheme, $host and
// $request_uri (the context's, not the rewritten target) expanded, and the query is carried over:
// appended after a '?' (or an '&' when the replacement has its own query), dropped when the
// replacement ends with '?'. A rule may stop the rules after it, or make the answer a redirect (a
// replacement that starts with http:// or https:// always does, 302 unless the rule names another
// status). Pure; RE2 runs in time linear in the path.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace ringproxy::http {

struct RewriteContext {
  std::string_view scheme;  // "http" or "https"
  std::string_view host;
  std::string_view request_uri;  // the origin-form target
};

// `text` with $scheme, $host and $request_uri replaced (a location's redirect). $host is
// nginx's: the Host's name in lower case, without its port.
std::string ExpandVariables(std::string_view text, const RewriteContext& context);

// A redirect's Location that is a path: a leading run of '/' and '\\' becomes one '/'
// ("//evil.test/x" would send a browser to another host, as a scheme-relative URL;
// nginx, merging slashes, sends "/evil.test/x" too). Anything else is left alone.
void SafeRelativeLocation(std::string* location);

struct RewriteResult {
  bool changed = false;     // *out holds the new target
  int redirect_status = 0;  // 301, 302, 307, 308: answer with Location: *out
};

class RewriteRules {
 public:
  RewriteRules();
  ~RewriteRules();
  RewriteRules(RewriteRules&&) noexcept;
  RewriteRules& operator=(RewriteRules&&) noexcept;

  // `redirect_status` 0: an internal rewrite (the replacement must then be a path, from
  // '/' or a capture; a result not from '/' gets one), unless the replacement is absolute; `last`:
  // no rule after this one runs when it matches. False with `*error` for a bad pattern or
  // replacement.
  bool Add(std::string_view pattern, std::string_view replacement, int redirect_status, bool last,
           std::string* error);
  bool empty() const { return rules_.empty(); }
  size_t size() const { return rules_.size(); }
  // `target` is origin-form ("/path?query").
  RewriteResult Apply(std::string_view target, const RewriteContext& context,
                      std::string* out) const;

 private:
  struct Rule {
    std::unique_ptr<re2::RE2> re;
    std::string replacement;
    int redirect_status;
    bool last;
  };
  std::vector<Rule> rules_;
};

}  // namespace ringproxy::http
