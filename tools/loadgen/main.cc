// loadgen: the project's load generator (docs/loadgen.md). A thin main over
// bench/loadgen.
#include <cstdio>
#include <string>

#include "bench/loadgen/loadgen.h"
#include "core/status_util.h"

int main(int argc, char** argv) {
  if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    fputs(ringproxy::loadgen::Usage().c_str(), stdout);
    return 0;
  }
  auto options = ringproxy::loadgen::ParseOptions(argc, argv);
  if (!options.ok()) {
    fprintf(stderr, "loadgen: %s\n%s", std::string(ringproxy::MessageOf(options.status())).c_str(),
            ringproxy::loadgen::Usage().c_str());
    return 1;
  }
  return ringproxy::loadgen::RunLoadgen(*options);
}
