// Locations of a virtual server, chosen by a request's path as nginx chooses them:
// an exact match ("= /path") wins; otherwise the regular expressions (RE2, searched
// unanchored as nginx's "~"; "~*" ignores case) are tried in the order they were
// added and the first that matches wins; otherwise the longest matching prefix; else
// none (-1). The path is the target's path part, before any '?', as NormalizePath
// leaves it (other escapes, such as %2F, stay as sent). RE2 runs in time linear in the
// path, whatever the pattern.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace ringproxy::http {

enum class LocationKind : uint8_t { kExact, kPrefix, kRegex, kRegexIgnoreCase };

class LocationMatcher {
 public:
  LocationMatcher();
  ~LocationMatcher();
  LocationMatcher(LocationMatcher&&) noexcept;
  LocationMatcher& operator=(LocationMatcher&&) noexcept;

  // Adds location `index`; false with `*error` for a bad pattern (an empty prefix,
  // a regex RE2 refuses).
  bool Add(LocationKind kind, std::string_view pattern, int index, std::string* error);
  // The location for `path` ("/a/b", no query), or -1.
  int Match(std::string_view path) const;

 private:
  struct Rule {
    std::string pattern;
    int index;
  };
  struct Regex {
    std::unique_ptr<re2::RE2> re;
    int index;
  };
  std::vector<Rule> exact_;
  std::vector<Rule> prefixes_;
  std::vector<Regex> regexes_;
};

// The path part of a request target: before '?' (origin-form), after the authority
// (absolute-form).
std::string_view TargetPath(std::string_view target);

enum class PathForm : uint8_t { kUnchanged, kNormalized, kAboveRoot, kBadEscape };

// An origin-form target with its path normalised as RFC 3986 §6.2.2 allows without a
// change of meaning: escapes of unreserved characters decoded ("/%73ervice" is
// "/service", "%2e" a dot), then "." and ".." segments removed (§5.2.4). Rewrites,
// locations and user routes so judge the path the upstream resolves, whatever the
// spelling: "/home/a/../b/x?q" is "/home/b/x?q". The query is left as sent.
// kNormalized sets `*out`; kAboveRoot is a ".." past the root ("/../x"), kBadEscape a '%'
// without two hex digits ("%2%65" would decode to a new escape): nginx refuses both with 400.
PathForm NormalizePath(std::string_view target, std::string* out);

}  // namespace ringproxy::http
