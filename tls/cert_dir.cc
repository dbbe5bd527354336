#include "tls/cert_dir.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ringproxy::tls {

namespace {

// The four files a name may have, by file name (not path).
struct NameFiles {
  std::string crt, key, rsa_crt, rsa_key;
};

enum class Slot { kCrt, kKey, kRsaCrt, kRsaKey };

std::string* SlotOf(NameFiles* files, Slot slot) {
  switch (slot) {
    case Slot::kCrt:
      return &files->crt;
    case Slot::kKey:
      return &files->key;
    case Slot::kRsaCrt:
      return &files->rsa_crt;
    case Slot::kRsaKey:
      return &files->rsa_key;
  }
  return &files->crt;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Regular files only; links are followed, anything we cannot stat is skipped as the
// directory scan of a file that vanished meanwhile.
bool IsRegularFile(const std::string& directory, const dirent& entry) {
  if (entry.d_type == DT_REG) return true;
  if (entry.d_type != DT_LNK && entry.d_type != DT_UNKNOWN) return false;
  struct stat st;
  std::string path = directory + "/" + entry.d_name;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& directory) {
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate_dir '", directory, "': ", strerror(errno)));
  }
  std::vector<std::string> files;
  while (dirent* entry = readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name.empty() || name[0] == '.') continue;
    if (!EndsWith(name, ".crt") && !EndsWith(name, ".key")) continue;
    if (IsRegularFile(directory, *entry)) files.emplace_back(name);
  }
  closedir(dir);
  // Sorted: the same entry numbers and the same first error on every machine.
  std::sort(files.begin(), files.end());
  return files;
}

// "NAME.rsa.crt" -> pattern text "NAME", kRsaCrt; "_.example.com.key" -> "*.example.com".
void SplitFileName(std::string_view file, std::string* pattern, Slot* slot) {
  bool crt = EndsWith(file, ".crt");
  std::string_view base = file.substr(0, file.size() - 4);
  bool rsa = EndsWith(base, ".rsa");
  if (rsa) base.remove_suffix(4);
  *slot = crt ? (rsa ? Slot::kRsaCrt : Slot::kCrt) : (rsa ? Slot::kRsaKey : Slot::kKey);
  if (base.size() >= 2 && base[0] == '_' && base[1] == '.') {
    *pattern = absl::StrCat("*", absl::string_view(base.data() + 1, base.size() - 1));
  } else {
    pattern->assign(base);
  }
}

absl::Status Missing(const std::string& directory, const std::string& have,
                     std::string_view want_ext) {
  std::string want = have.substr(0, have.size() - 4) + std::string(want_ext);
  return absl::InvalidArgumentError(
      absl::StrCat("certificate_dir '", directory, "': '", have, "' has no partner '", want, "'"));
}

absl::Status CheckPairs(const std::string& directory, const NameFiles& f) {
  if (!f.crt.empty() && f.key.empty()) return Missing(directory, f.crt, ".key");
  if (!f.key.empty() && f.crt.empty()) return Missing(directory, f.key, ".crt");
  if (!f.rsa_crt.empty() && f.rsa_key.empty()) return Missing(directory, f.rsa_crt, ".key");
  if (!f.rsa_key.empty() && f.rsa_crt.empty()) return Missing(directory, f.rsa_key, ".crt");
  if (!f.rsa_crt.empty() && f.crt.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate_dir '", directory, "': '", f.rsa_crt,
        "' is a second (RSA) pair but the name has no first pair (NAME.crt + NAME.key)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CertDirIndex> IndexCertDirectory(const std::string& directory) {
  absl::StatusOr<std::vector<std::string>> files = ListFiles(directory);
  if (!files.ok()) return files.status();
  absl::flat_hash_map<std::string, NameFiles> by_name;
  for (const std::string& file : *files) {
    std::string text, pattern;
    Slot slot;
    SplitFileName(file, &text, &slot);
    bool wildcard = false;
    HostNameError error = NormalizeNamePattern(text, &pattern, &wildcard);
    if (error != HostNameError::kOk) {
      return absl::InvalidArgumentError(absl::StrCat("certificate_dir '", directory, "': '", file,
                                                     "': not a host name (",
                                                     std::string(HostNameErrorText(error)), ")"));
    }
    std::string* have = SlotOf(&by_name[pattern], slot);
    if (!have->empty()) {
      return absl::InvalidArgumentError(absl::StrCat("certificate_dir '", directory, "': '", *have,
                                                     "' and '", file, "' name the same ", pattern));
    }
    *have = file;
  }
  CertDirIndex index;
  index.entries.reserve(by_name.size());
  for (const std::string& file : *files) {
    std::string text, pattern;
    Slot slot;
    SplitFileName(file, &text, &slot);
    bool wildcard = false;
    (void)NormalizeNamePattern(text, &pattern, &wildcard);
    auto it = by_name.find(pattern);
    if (it == by_name.end()) continue;  // entry already made from an earlier file
    const NameFiles& f = it->second;
    if (absl::Status s = CheckPairs(directory, f); !s.ok()) return s;
    CertDirEntry entry;
    entry.name = pattern;
    entry.primary = {directory + "/" + f.crt, directory + "/" + f.key};
    if (!f.rsa_crt.empty()) entry.rsa = {directory + "/" + f.rsa_crt, directory + "/" + f.rsa_key};
    index.names.Add(pattern, static_cast<uint32_t>(index.entries.size()));
    index.entries.push_back(std::move(entry));
    by_name.erase(it);
  }
  return index;
}

}  // namespace ringproxy::tls
