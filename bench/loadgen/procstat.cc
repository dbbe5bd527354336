#include "bench/loadgen/procstat.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ringproxy::loadgen {
namespace {

// Fields after the command name "(...)" of /proc/PID/stat, 0-based from field 3.
bool ReadStat(pid_t pid, pid_t* ppid, uint64_t* ticks) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(f, text)) return false;
  size_t close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  std::vector<std::string> fields;
  while (rest >> field) fields.push_back(field);
  if (fields.size() < 13) return false;
  *ppid = static_cast<pid_t>(strtol(fields[1].c_str(), nullptr, 10));
  *ticks = strtoull(fields[11].c_str(), nullptr, 10) + strtoull(fields[12].c_str(), nullptr, 10);
  return true;
}

uint64_t ReadRss(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

// One pass over /proc: the tree under `root` (root first) and every process's ticks.
struct Scan {
  std::vector<pid_t> tree;
  std::map<pid_t, uint64_t> ticks;
};

Scan ScanTree(pid_t root) {
  Scan s;
  std::multimap<pid_t, pid_t> children;
  DIR* d = opendir("/proc");
  if (d != nullptr) {
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      long pid = strtol(e->d_name, &end, 10);
      if (*end != '\0' || pid <= 0) continue;
      pid_t ppid = 0;
      uint64_t ticks = 0;
      if (ReadStat(static_cast<pid_t>(pid), &ppid, &ticks)) {
        children.emplace(ppid, static_cast<pid_t>(pid));
        s.ticks[static_cast<pid_t>(pid)] = ticks;
      }
    }
    closedir(d);
  }
  s.tree.push_back(root);
  for (size_t i = 0; i < s.tree.size(); ++i) {
    auto range = children.equal_range(s.tree[i]);
    for (auto it = range.first; it != range.second; ++it) s.tree.push_back(it->second);
  }
  return s;
}

}  // namespace

ProcessUsage ReadUsage(pid_t root) {
  ProcessUsage u;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  const Scan s = ScanTree(root);
  for (pid_t pid : s.tree) {
    auto it = s.ticks.find(pid);
    if (it == s.ticks.end()) continue;  // gone, or never there
    u.cpu_seconds += static_cast<double>(it->second) / hz;
    u.rss_bytes += ReadRss(pid);
    ++u.processes;
  }
  return u;
}

}  // namespace ringproxy::loadgen
