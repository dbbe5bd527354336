// Properties of SNI name handling (tls/server_name.h) on arbitrary bytes. The input is
// lines: the first is the name a client sends, the others are configured patterns; the
// line count's parity says whether there is a default. Checked: a normalised name keeps
// every rule and normalises to itself, case does not matter, and the index selects what
// a plain linear reference does (exact beats wildcard, a wildcard covers one label, the
// default or nothing otherwise) with a value that is one of the entries.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz.h"
#include "tls/server_name.h"

using namespace ringproxy::tls;

namespace {

void CheckNormalised(std::string_view in) {
  HostName out;
  if (NormalizeHostName(in, &out) != HostNameError::kOk) return;
  std::string_view n = out.view();
  FUZZ_CHECK(!n.empty() && n.size() <= kHostNameMaxBytes);
  FUZZ_CHECK(n.front() != '.' && n.back() != '.');
  size_t label = 0;
  for (char c : n) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    FUZZ_CHECK(ok);
    label = c == '.' ? 0 : label + 1;
    FUZZ_CHECK(label <= kHostLabelMaxBytes);
    FUZZ_CHECK(n.find("..") == std::string_view::npos);
  }
  HostName again;
  FUZZ_CHECK(NormalizeHostName(n, &again) == HostNameError::kOk && again.view() == n);
  std::string upper(in);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  HostName from_upper;
  FUZZ_CHECK(NormalizeHostName(upper, &from_upper) == HostNameError::kOk && from_upper.view() == n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= in.size();) {
    size_t end = in.find('\n', start);
    if (end == std::string_view::npos) end = in.size();
    lines.push_back(in.substr(start, end - start));
    start = end + 1;
  }
  for (std::string_view line : lines) CheckNormalised(line);

  ServerNameIndex index;
  std::vector<std::string> patterns;  // by value: the first pattern of each name
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string p;
    bool wildcard = false;
    bool valid = NormalizeNamePattern(lines[i], &p, &wildcard) == HostNameError::kOk;
    auto added = index.Add(lines[i], static_cast<uint32_t>(patterns.size()));
    FUZZ_CHECK(valid == (added != ServerNameIndex::AddResult::kInvalid));
    if (added == ServerNameIndex::AddResult::kAdded) patterns.push_back(p);
    if (added == ServerNameIndex::AddResult::kDuplicate) {
      bool seen = false;
      for (const std::string& q : patterns) seen = seen || q == p;
      FUZZ_CHECK(seen);
    }
  }
  bool has_default = lines.size() % 2 == 0;
  HostName host;
  std::string_view h;
  if (NormalizeHostName(lines[0], &host) == HostNameError::kOk) h = host.view();
  ServerNameIndex::Selection pick = index.Select(h, has_default);

  // The reference: a linear scan.
  int exact = -1, wild = -1;
  size_t dot = h.find('.');
  for (size_t v = 0; v < patterns.size(); ++v) {
    const std::string& p = patterns[v];
    if (!h.empty() && p == h) exact = static_cast<int>(v);
    if (dot != std::string_view::npos && p.size() > 2 && p[0] == '*' &&
        std::string_view(p).substr(2) == h.substr(dot + 1)) {
      wild = static_cast<int>(v);
    }
  }
  switch (pick.kind) {
    case ServerNameIndex::Kind::kExact:
      FUZZ_CHECK(pick.value < patterns.size() && static_cast<int>(pick.value) == exact);
      break;
    case ServerNameIndex::Kind::kWildcard:
      FUZZ_CHECK(exact < 0 && pick.value < patterns.size() && static_cast<int>(pick.value) == wild);
      break;
    case ServerNameIndex::Kind::kDefault:
      FUZZ_CHECK(has_default && exact < 0 && wild < 0);
      break;
    case ServerNameIndex::Kind::kNone:
      FUZZ_CHECK(!has_default && exact < 0 && wild < 0);
      break;
  }
  return 0;
}
