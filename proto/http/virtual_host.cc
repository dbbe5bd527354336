#include "proto/http/virtual_host.h"

#include <algorithm>

#include "core/ascii.h"

namespace ringproxy::http {

namespace {

// Letters, digits, '-', '_' and dots between labels; no empty label.
bool IsHostName(std::string_view name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  char previous = '.';
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok || (c == '.' && previous == '.')) return false;
    previous = c;
  }
  return true;
}

bool Taken(const std::vector<std::pair<std::string, int>>& entries, std::string_view name) {
  return std::any_of(entries.begin(), entries.end(),
                     [&](const auto& e) { return e.first == name; });
}

}  // namespace

std::string_view NormalizeHost(std::string_view host, char (&buffer)[256]) {
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);  // the literal, without the port
  } else {
    host = host.substr(0, host.rfind(':'));
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  }
  if (host.size() > sizeof(buffer)) return {};
  for (size_t i = 0; i < host.size(); ++i) buffer[i] = AsciiLower(host[i]);
  return {buffer, host.size()};
}

bool VirtualHostIndex::Add(std::string_view name, int server, std::string* error) {
  char buffer[256];
  if (name.find(':') != std::string_view::npos && !name.starts_with("[")) {
    *error = "a server name has no port: '" + std::string(name) + "'";
    return false;
  }
  if (name.starts_with("*.")) {
    const std::string_view rest = NormalizeHost(name.substr(2), buffer);
    if (!IsHostName(rest)) {
      *error = "a bad wildcard name '" + std::string(name) + "'";
      return false;
    }
    const std::string suffix = "." + std::string(rest);
    if (Taken(leading_, suffix)) {
      *error = "'" + std::string(name) + "' is already a server's name";
      return false;
    }
    leading_.emplace_back(suffix, server);
    return true;
  }
  if (name.ends_with(".*")) {
    std::string lowered(name.substr(0, name.size() - 2));
    for (char& c : lowered) c = AsciiLower(c);
    if (!IsHostName(lowered)) {
      *error = "a bad wildcard name '" + std::string(name) + "'";
      return false;
    }
    lowered += ".";
    if (Taken(trailing_, lowered)) {
      *error = "'" + std::string(name) + "' is already a server's name";
      return false;
    }
    trailing_.emplace_back(lowered, server);
    return true;
  }
  const std::string_view normal = NormalizeHost(name, buffer);
  if (normal.size() != name.size() - (name.ends_with(".") ? 1 : 0) ||
      (!IsHostName(normal) && !(normal.starts_with("[") && normal.ends_with("]")))) {
    *error = "a bad server name '" + std::string(name) + "' (a host name without a port)";
    return false;
  }
  if (Taken(exact_, normal)) {
    *error = "'" + std::string(name) + "' is already a server's name";
    return false;
  }
  exact_.emplace_back(std::string(normal), server);
  return true;
}

void VirtualHostIndex::Finish() {
  std::sort(exact_.begin(), exact_.end());
  auto longest_first = [](const Entry& a, const Entry& b) {
    return a.first.size() > b.first.size();
  };
  std::stable_sort(leading_.begin(), leading_.end(), longest_first);
  std::stable_sort(trailing_.begin(), trailing_.end(), longest_first);
}

int VirtualHostIndex::Find(std::string_view host) const {
  char buffer[256];
  const std::string_view name = NormalizeHost(host, buffer);
  if (name.empty()) return default_;
  auto it = std::lower_bound(exact_.begin(), exact_.end(), name,
                             [](const Entry& e, std::string_view n) { return e.first < n; });
  if (it != exact_.end() && it->first == name) return it->second;
  for (const Entry& e : leading_) {
    // "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com".
    if (name.size() > e.first.size() && name.ends_with(e.first)) return e.second;
  }
  for (const Entry& e : trailing_) {
    if (name.size() > e.first.size() && name.starts_with(e.first)) return e.second;
  }
  return default_;
}

}  // namespace ringproxy::http
