// The ringproxy process around a Server: version report, config check, and the
// control loop that turns signals into actions.
//   SIGTERM/SIGINT  stop accepting, drain up to runtime.drain_timeout_ms, exit 0;
//                   a second one closes everything at once.
//   SIGHUP          reload the config file: validate, then swap per shard; a bad file
//                   is reported and the running config stays. Also reopens log.file.
//   SIGUSR1         log a line of counters.
#pragma once

#include <string>

namespace ringproxy {

// Versions of everything linked, the kernel, and which io_uring features it grants.
std::string VersionText();

// Loads and validates; prints the result. Returns the process exit code.
int CheckConfigFile(const std::string& path);

// Runs until drained or stopped. Returns the process exit code.
int RunDaemon(const std::string& config_path);

}  // namespace ringproxy
