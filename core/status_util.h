// Debian's abseil is built with its own absl::string_view (not std::string_view), so
// the two do not convert implicitly. Status messages cross over through these.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace ringproxy {

inline std::string_view MessageOf(const absl::Status& status) {
  absl::string_view m = status.message();
  return std::string_view(m.data(), m.size());
}

}  // namespace ringproxy
