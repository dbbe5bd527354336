#include "tls/server_name.h"

#include "absl/strings/string_view.h"

namespace ringproxy::tls {

namespace {

// Debian's abseil has its own string_view type; the maps are looked up through it.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsLabelByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Checks labels of an already lowered name without a trailing dot.
HostNameError CheckLabels(std::string_view name) {
  if (name.empty()) return HostNameError::kEmpty;
  if (name.size() > kHostNameMaxBytes) return HostNameError::kTooLong;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return HostNameError::kEmptyLabel;
      label = 0;
      continue;
    }
    if (!IsLabelByte(c)) return HostNameError::kBadCharacter;
    if (++label > kHostLabelMaxBytes) return HostNameError::kLabelTooLong;
  }
  return label == 0 ? HostNameError::kEmptyLabel : HostNameError::kOk;
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

}  // namespace

std::string_view HostNameErrorText(HostNameError error) {
  switch (error) {
    case HostNameError::kOk:
      return "ok";
    case HostNameError::kEmpty:
      return "empty name";
    case HostNameError::kTooLong:
      return "name longer than 253 bytes";
    case HostNameError::kEmptyLabel:
      return "empty label";
    case HostNameError::kLabelTooLong:
      return "label longer than 63 bytes";
    case HostNameError::kBadCharacter:
      return "character outside [a-z0-9-_.]";
    case HostNameError::kWildcardTooBroad:
      return "wildcard base needs at least two labels (*.example.com)";
  }
  return "unknown";
}

HostNameError NormalizeHostName(std::string_view in, HostName* out) {
  if (!in.empty() && in.back() == '.') in.remove_suffix(1);
  if (in.size() > kHostNameMaxBytes) return HostNameError::kTooLong;
  char lowered[kHostNameMaxBytes];
  for (size_t i = 0; i < in.size(); ++i) lowered[i] = Lower(in[i]);
  std::string_view name(lowered, in.size());
  HostNameError error = CheckLabels(name);
  if (error != HostNameError::kOk) return error;
  for (size_t i = 0; i < name.size(); ++i) out->bytes_[i] = name[i];
  out->size_ = static_cast<uint8_t>(name.size());
  return HostNameError::kOk;
}

HostNameError NormalizeNamePattern(std::string_view in, std::string* out, bool* wildcard) {
  *wildcard = in.size() >= 2 && in[0] == '*' && in[1] == '.';
  if (*wildcard) in.remove_prefix(2);
  HostName base;
  HostNameError error = NormalizeHostName(in, &base);
  if (error != HostNameError::kOk) return error;
  // "*." takes two bytes of the 253 a presented name may have.
  if (*wildcard && base.view().size() + 2 > kHostNameMaxBytes) return HostNameError::kTooLong;
  if (*wildcard && base.view().find('.') == std::string_view::npos) {
    return HostNameError::kWildcardTooBroad;
  }
  out->assign(*wildcard ? "*." : "");
  out->append(base.view());
  return HostNameError::kOk;
}

ServerNameIndex::AddResult ServerNameIndex::Add(std::string_view pattern, uint32_t value) {
  std::string normalised;
  bool wildcard = false;
  if (NormalizeNamePattern(pattern, &normalised, &wildcard) != HostNameError::kOk) {
    return AddResult::kInvalid;
  }
  if (wildcard) normalised.erase(0, 2);
  auto& map = wildcard ? wildcard_ : exact_;
  return map.try_emplace(std::move(normalised), value).second ? AddResult::kAdded
                                                              : AddResult::kDuplicate;
}

ServerNameIndex::Selection ServerNameIndex::Select(std::string_view host, bool has_default) const {
  if (!host.empty()) {
    auto exact = exact_.find(Absl(host));
    if (exact != exact_.end()) return {Kind::kExact, exact->second};
    size_t dot = host.find('.');
    if (dot != std::string_view::npos && !wildcard_.empty()) {
      auto wild = wildcard_.find(Absl(host.substr(dot + 1)));
      if (wild != wildcard_.end()) return {Kind::kWildcard, wild->second};
    }
  }
  return {has_default ? Kind::kDefault : Kind::kNone, 0};
}

}  // namespace ringproxy::tls
