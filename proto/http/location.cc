#include "proto/http/location.h"

#include <vector>

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

namespace {

// 1 for a "." segment, 2 for "..", else 0; a dot may be written "%2e" or "%2E".
int DotsOf(std::string_view segment) {
  int dots = 0;
  while (!segment.empty()) {
    if (segment[0] == '.') {
      segment.remove_prefix(1);
    } else if (segment.size() >= 3 && segment[0] == '%' && segment[1] == '2' &&
               (segment[2] == 'e' || segment[2] == 'E')) {
      segment.remove_prefix(3);
    } else {
      return 0;
    }
    if (++dots > 2) return 0;
  }
  return dots;
}

}  // namespace

DotSegments RemoveDotSegments(std::string_view target, std::string* out) {
  if (!target.starts_with('/')) return DotSegments::kNone;
  const std::string_view path = target.substr(0, target.find('?'));
  // Every dot segment follows a '/': most paths are passed over here.
  if (path.find("/.") == std::string_view::npos && path.find("/%2") == std::string_view::npos) {
    return DotSegments::kNone;
  }
  std::vector<std::string_view> kept;
  bool removed = false;
  bool ends_in_dots = false;
  for (size_t at = 1;;) {
    const size_t end = path.find('/', at);
    const std::string_view segment =
        path.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    const int dots = DotsOf(segment);
    ends_in_dots = dots != 0;
    if (dots == 0) {
      kept.push_back(segment);
    } else {
      removed = true;
      if (dots == 2) {
        if (kept.empty()) return DotSegments::kAboveRoot;
        kept.pop_back();
      }
    }
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  if (!removed) return DotSegments::kNone;
  out->assign("/");
  for (size_t i = 0; i < kept.size(); ++i) {
    if (i != 0) out->push_back('/');
    out->append(kept[i]);
  }
  // "/a/b/.." is the directory "/a/", not the file "/a".
  if (ends_in_dots && !kept.empty()) out->push_back('/');
  out->append(target.substr(path.size()));
  return DotSegments::kRemoved;
}

}  // namespace ringproxy::http
