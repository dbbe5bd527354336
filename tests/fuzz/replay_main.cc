// The fuzz targets in the normal build: replays the checked-in corpus, then a fixed
// number of deterministic mutations of each input (flips, cuts, insertions, splices),
// so the properties are checked on every `meson test` without libFuzzer.
// Usage: TARGET_replay CORPUS_DIR [mutations-per-input]
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

// What runs now, for the abort handler: a failed property leaves its input behind.
const std::string* g_input = nullptr;
char g_what[512];

void OnAbort(int) {
  static const char kFile[] = "replay-crash";
  int fd = open(kFile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0 && g_input != nullptr) {
    ssize_t n = write(fd, g_input->data(), g_input->size());
    (void)n;
    close(fd);
  }
  ssize_t n = write(STDERR_FILENO, g_what, strlen(g_what));
  (void)n;
  signal(SIGABRT, SIG_DFL);
  raise(SIGABRT);
}

void Run(const std::string& s, const std::string& name, int mutation) {
  g_input = &s;
  snprintf(g_what, sizeof(g_what), "failing input: %s, mutation %d (bytes in ./replay-crash)\n",
           name.c_str(), mutation);
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR [mutations]\n", argv[0]);
    return 2;
  }
  const int mutations = argc > 2 ? atoi(argv[2]) : 300;
  std::vector<std::string> names;
  DIR* d = opendir(argv[1]);
  if (d == nullptr) {
    fprintf(stderr, "%s: cannot open corpus %s\n", argv[0], argv[1]);
    return 2;
  }
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  }
  closedir(d);
  // Sorted: the same mutations on every machine, whatever order readdir gives.
  std::sort(names.begin(), names.end());
  std::vector<std::string> inputs;
  for (const std::string& name : names) {
    std::ifstream f(std::string(argv[1]) + "/" + name, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    inputs.push_back(s.str());
  }
  signal(SIGABRT, OnAbort);
  if (inputs.empty()) {
    fprintf(stderr, "%s: empty corpus %s\n", argv[0], argv[1]);
    return 1;
  }
  std::mt19937 rng(12345);
  size_t runs = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string& in = inputs[i];
    Run(in, names[i], -1);
    ++runs;
    for (int m = 0; m < mutations; ++m) {
      std::string x = in;
      switch (rng() % 5) {
        case 0:
          if (!x.empty()) x[rng() % x.size()] ^= static_cast<char>(1 << (rng() % 8));
          break;
        case 1:
          x.resize(x.empty() ? 0 : rng() % x.size());
          break;
        case 2:
          x.insert(x.empty() ? 0 : rng() % x.size(), 1, static_cast<char>(rng()));
          break;
        case 3: {
          const std::string& other = inputs[rng() % inputs.size()];
          x = x.substr(0, x.empty() ? 0 : rng() % x.size()) +
              other.substr(other.empty() ? 0 : rng() % other.size());
          break;
        }
        default:
          if (!x.empty()) x[rng() % x.size()] = static_cast<char>(rng());
          break;
      }
      Run(x, names[i], m);
      ++runs;
    }
  }
  printf("%s: %zu inputs, %zu runs, all properties held\n", argv[0], inputs.size(), runs);
  return 0;
}
