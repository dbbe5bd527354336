#include "proto/http/rewrite.h"

#include <algorithm>

#include "core/ascii.h"
#include "proto/http/head.h"
#include "re2/re2.h"

namespace ringproxy::http {
namespace {

constexpr int kMaxCaptures = 10;  // $0..$9

bool Absolute(std::string_view s) { return s.starts_with("http://") || s.starts_with("https://"); }

// The replacement with its variables expanded (a capture that took no part in the
// match is empty; without groups, $N is left as written).
void Expand(std::string_view replacement, const re2::StringPiece* groups, int ngroups,
            const RewriteContext& context, std::string* out) {
  out->clear();
  while (!replacement.empty()) {
    const size_t dollar = replacement.find('$');
    out->append(replacement.substr(0, dollar));
    if (dollar == std::string_view::npos) break;
    replacement.remove_prefix(dollar);
    if (groups != nullptr && replacement.size() >= 2 && replacement[1] >= '0' &&
        replacement[1] <= '9') {
      const int n = replacement[1] - '0';
      if (n < ngroups && groups[n].data() != nullptr)
        out->append(groups[n].data(), groups[n].size());
      replacement.remove_prefix(2);
      continue;
    }
    bool named = false;
    if (replacement.starts_with("$host")) {
      // nginx's $host: the name in lower case, without the port ("Host: Mail:8080"
      // must not send a browser to https://Mail:8080/).
      for (char c : HostWithoutPort(context.host)) out->push_back(AsciiLower(c));
      replacement.remove_prefix(5);
      continue;
    }
    for (const auto& [name, value] :
         {std::pair{std::string_view("$scheme"), context.scheme},
          std::pair{std::string_view("$request_uri"), context.request_uri}}) {
      if (replacement.starts_with(name)) {
        out->append(value);
        replacement.remove_prefix(name.size());
        named = true;
        break;
      }
    }
    if (!named) {
      out->push_back('$');
      replacement.remove_prefix(1);
    }
  }
}

// The highest $N a replacement names, or -1.
int HighestCapture(std::string_view replacement) {
  int highest = -1;
  for (size_t i = 0; i + 1 < replacement.size(); ++i) {
    if (replacement[i] == '$' && replacement[i + 1] >= '0' && replacement[i + 1] <= '9') {
      highest = std::max(highest, replacement[i + 1] - '0');
    }
  }
  return highest;
}

}  // namespace

std::string ExpandVariables(std::string_view text, const RewriteContext& context) {
  std::string out;
  Expand(text, nullptr, 0, context, &out);
  return out;
}

RewriteRules::RewriteRules() = default;
RewriteRules::~RewriteRules() = default;
RewriteRules::RewriteRules(RewriteRules&&) noexcept = default;
RewriteRules& RewriteRules::operator=(RewriteRules&&) noexcept = default;

bool RewriteRules::Add(std::string_view pattern, std::string_view replacement, int redirect_status,
                       bool last, std::string* error) {
  if (pattern.empty()) {
    *error = "an empty pattern";
    return false;
  }
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_unique<RE2>(pattern, options);
  if (!re->ok()) {
    *error = "bad regular expression: " + re->error();
    return false;
  }
  if (HighestCapture(replacement) > re->NumberOfCapturingGroups()) {
    *error = "the replacement names a capture the pattern does not have";
    return false;
  }
  for (char c : replacement) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      *error = "the replacement has a space or a control character";
      return false;
    }
  }
  if (redirect_status == 0 && Absolute(replacement)) redirect_status = 302;
  const bool from_capture = replacement.size() >= 2 && replacement[0] == '$' &&
                            replacement[1] >= '0' && replacement[1] <= '9';
  if (redirect_status == 0 && !replacement.starts_with('/') && !from_capture) {
    *error = "an internal rewrite's replacement is a path, from '/'";
    return false;
  }
  if (redirect_status != 0 && redirect_status != 301 && redirect_status != 302 &&
      redirect_status != 307 && redirect_status != 308) {
    *error = "a redirect's status is 301, 302, 307 or 308";
    return false;
  }
  rules_.push_back({std::move(re), std::string(replacement), redirect_status, last});
  return true;
}

void SafeRelativeLocation(std::string* location) {
  // An empty Location is this very URL again: a redirect loop (and a cached one, for 301).
  if (location->empty()) {
    location->assign("/");
    return;
  }
  // Browsers read a leading backslash as a slash (WHATWG URL), so it counts as one.
  if (!location->starts_with('/') && !location->starts_with('\\')) return;
  const size_t keep = location->find_first_not_of("/\\");
  location->replace(0, keep == std::string::npos ? location->size() : keep, "/");
}

RewriteResult RewriteRules::Apply(std::string_view target, const RewriteContext& context,
                                  std::string* out) const {
  RewriteResult result;
  std::string current;  // the target once a rule has rewritten it
  std::string next;
  re2::StringPiece groups[kMaxCaptures];
  for (const Rule& rule : rules_) {
    const std::string_view now = result.changed ? std::string_view(current) : target;
    const size_t q = now.find('?');
    const std::string_view path = now.substr(0, q);
    const int ngroups = std::min(kMaxCaptures, rule.re->NumberOfCapturingGroups() + 1);
    if (!rule.re->Match(path, 0, path.size(), RE2::UNANCHORED, groups, ngroups)) continue;
    Expand(rule.replacement, groups, ngroups, context, &next);
    // An internal rewrite stays origin-form whatever a leading capture held.
    if (rule.redirect_status == 0 && !next.starts_with('/')) next.insert(next.begin(), '/');
    if (rule.redirect_status != 0) SafeRelativeLocation(&next);
    const std::string_view query =
        q == std::string_view::npos ? std::string_view() : now.substr(q + 1);
    if (next.ends_with('?') && rule.replacement.ends_with('?')) {
      next.pop_back();  // "…?": the client's query is dropped
    } else if (!query.empty()) {
      next.push_back(next.find('?') == std::string::npos ? '?' : '&');
      next.append(query);
    }
    if (rule.redirect_status != 0 && next.empty()) next = "/";  // "$1?" of "/"
    current.swap(next);
    result.changed = true;
    if (rule.redirect_status != 0) {
      result.redirect_status = rule.redirect_status;
      break;
    }
    if (rule.last) break;
  }
  if (result.changed) *out = std::move(current);
  return result;
}

}  // namespace ringproxy::http
