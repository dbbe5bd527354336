// ringproxy: the daemon. A thin main over proto/daemon.h.
#include <cstdio>
#include <cstring>
#include <string>

#include "proto/daemon.h"

namespace {

void Usage(FILE* out) {
  fprintf(out,
          "usage: ringproxy --config FILE [--check]\n"
          "       ringproxy --version\n"
          "  --config FILE  run with this TOML config (see docs/configuration.md)\n"
          "  --check        validate the config and exit (0 = valid)\n"
          "  --version      print versions of everything linked\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string config;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--version") == 0) {
      fputs(ringproxy::VersionText().c_str(), stdout);
      return 0;
    }
    if (strcmp(argv[i], "--check") == 0) {
      check = true;
    } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config = argv[++i];
    } else if (strncmp(argv[i], "--config=", 9) == 0) {
      config = argv[i] + 9;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      Usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "ringproxy: unknown argument '%s'\n", argv[i]);
      Usage(stderr);
      return 2;
    }
  }
  if (config.empty()) {
    Usage(stderr);
    return 2;
  }
  return check ? ringproxy::CheckConfigFile(config) : ringproxy::RunDaemon(config);
}
