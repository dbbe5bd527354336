// Locations of a virtual server, chosen by a request's path as nginx chooses them:
// an exact match ("= /path") wins; otherwise the regular expressions (RE2, searched
// unanchored as nginx's "~"; "~*" ignores case) are tried in the order they were
// added and the first that matches wins; otherwise the longest matching prefix; else
// none (-1). The path is the target's path part, before any '?', without dot segments
// (RemoveDotSegments), otherwise as sent (not percent-decoded). RE2 runs in time linear
// in the path, whatever the pattern.
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

enum class DotSegments : uint8_t { kNone, kRemoved, kAboveRoot };

// An origin-form target with its path's "." and ".." segments (also written with %2e)
// removed as RFC 3986 §5.2.4 removes them, so that locations and user routes judge the
// path the upstream resolves: "/home/a/../b/x?q" is "/home/b/x?q". kRemoved sets `*out`;
// kAboveRoot is a ".." past the root ("/../x"), which nginx also refuses with 400.
DotSegments RemoveDotSegments(std::string_view target, std::string* out);

}  // namespace ringproxy::http
