#include "proto/http/location.h"

#include "re2/re2.h"

namespace ringproxy::http {

LocationMatcher::LocationMatcher() = default;
LocationMatcher::~LocationMatcher() = default;
LocationMatcher::LocationMatcher(LocationMatcher&&) noexcept = default;
LocationMatcher& LocationMatcher::operator=(LocationMatcher&&) noexcept = default;

bool LocationMatcher::Add(LocationKind kind, std::string_view pattern, int index,
                          std::string* error) {
  if (pattern.empty()) {
    *error = "an empty pattern";
    return false;
  }
  switch (kind) {
    case LocationKind::kExact:
      exact_.push_back({std::string(pattern), index});
      return true;
    case LocationKind::kPrefix:
      prefixes_.push_back({std::string(pattern), index});
      return true;
    case LocationKind::kRegex:
    case LocationKind::kRegexIgnoreCase: {
      RE2::Options options;
      options.set_log_errors(false);
      options.set_case_sensitive(kind == LocationKind::kRegex);
      auto re = std::make_unique<RE2>(pattern, options);
      if (!re->ok()) {
        *error = "bad regular expression: " + re->error();
        return false;
      }
      regexes_.push_back({std::move(re), index});
      return true;
    }
  }
  return false;
}

int LocationMatcher::Match(std::string_view path) const {
  for (const Rule& r : exact_) {
    if (r.pattern == path) return r.index;
  }
  for (const Regex& r : regexes_) {
    if (RE2::PartialMatch(path, *r.re)) return r.index;
  }
  int best = -1;
  size_t best_length = 0;
  for (const Rule& r : prefixes_) {
    if (r.pattern.size() > best_length && path.starts_with(r.pattern)) {
      best = r.index;
      best_length = r.pattern.size();
    }
  }
  return best;
}

std::string_view TargetPath(std::string_view target) {
  if (!target.empty() && target[0] != '/') {
    const size_t scheme = target.find("://");
    if (scheme == std::string_view::npos) return target;  // "*"
    const size_t path = target.find_first_of("/?", scheme + 3);
    if (path == std::string_view::npos || target[path] == '?') return "/";
    target.remove_prefix(path);
  }
  return target.substr(0, target.find('?'));
}

}  // namespace ringproxy::http
