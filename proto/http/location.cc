#include "proto/http/location.h"

#include <algorithm>
#include <string>
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

// 1 for a "." segment, 2 for "..", else 0.
int DotsOf(std::string_view segment) {
  if (segment == ".") return 1;
  if (segment == "..") return 2;
  return 0;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 §2.3: escaping these changes nothing, so a spelling must not change a match.
bool Unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// `path` with its escapes of unreserved characters decoded into `*out` (set only when
// there were any). False for a '%' without two hex digits.
bool DecodeUnreserved(std::string_view path, std::string* out, bool* decoded_any) {
  size_t at = path.find('%');
  bool decoded = false;
  while (at != std::string_view::npos) {
    const int hi = at + 2 < path.size() ? HexDigit(path[at + 1]) : -1;
    const int lo = hi >= 0 ? HexDigit(path[at + 2]) : -1;
    if (lo < 0) return false;
    const auto c = static_cast<unsigned char>(hi * 16 + lo);
    const size_t next = path.find('%', at + 1);
    if (Unreserved(c)) {
      if (!decoded) out->assign(path.substr(0, at));
      decoded = true;
      out->push_back(static_cast<char>(c));
      out->append(path.substr(
          at + 3, next == std::string_view::npos ? std::string_view::npos : next - at - 3));
    } else if (decoded) {
      out->append(
          path.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at));
    }
    at = next;
  }
  *decoded_any = decoded;
  return true;
}

}  // namespace

PathForm NormalizePath(std::string_view target, std::string* out) {
  if (!target.starts_with('/')) return PathForm::kUnchanged;
  const std::string_view query = target.substr(std::min(target.find('?'), target.size()));
  std::string_view path = target.substr(0, target.size() - query.size());
  // Most paths have neither an escape nor a dot segment, which follows a '/'.
  if (path.find('%') == std::string_view::npos && path.find("/.") == std::string_view::npos) {
    return PathForm::kUnchanged;
  }
  std::string decoded;
  bool changed = false;
  if (!DecodeUnreserved(path, &decoded, &changed)) return PathForm::kBadEscape;
  if (changed) path = decoded;
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
        if (kept.empty()) return PathForm::kAboveRoot;
        kept.pop_back();
      }
    }
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  if (!removed && !changed) return PathForm::kUnchanged;
  std::string result("/");
  for (size_t i = 0; i < kept.size(); ++i) {
    if (i != 0) result.push_back('/');
    result.append(kept[i]);
  }
  // "/a/b/.." is the directory "/a/", not the file "/a".
  if (ends_in_dots && !kept.empty()) result.push_back('/');
  result.append(query);
  *out = std::move(result);
  return PathForm::kNormalized;
}

}  // namespace ringproxy::http
