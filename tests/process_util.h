// Real peers for tests: child processes (memcached, lookupd) started on free loopback
// ports and stopped by PID, as the project's rules ask (no mocks of real components).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/socket.h"
#include "gtest/gtest.h"

namespace ringproxy::testing {

inline uint16_t FreePort() {
  auto addr = SocketAddress::Parse("127.0.0.1:0");
  auto fd = ListenTcp(*addr, ListenOptions{1, false});
  return fd.ok() ? LocalPort(fd->get()) : 0;
}

inline bool Listening(uint16_t port) {
  char want[8];
  snprintf(want, sizeof(want), ":%04X", port);
  std::ifstream f("/proc/net/tcp");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string sl, local, remote, state;
    in >> sl >> local >> remote >> state;
    if (local.size() > 5 && local.compare(local.size() - 5, 5, want) == 0 && state == "0A") {
      return true;
    }
  }
  return false;
}

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    Stop();
    RemoveLog();
  }

  // Starts argv[0] with argv; output goes to a temp file (shown on failure, removed with
  // this object).
  bool Start(const std::vector<std::string>& argv) {
    RemoveLog();
    log_path_ = "/tmp/ringproxy-test-child-" + std::to_string(getpid()) + "-" +
                std::to_string(counter_++) + ".log";
    // Everything the child needs is built before fork: after it, only
    // async-signal-safe calls (the test may have other threads).
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const char* log_path = log_path_.c_str();
    pid_ = fork();
    if (pid_ == 0) {
      int out = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
      }
      execv(args[0], args.data());
      _exit(127);
    }
    return pid_ > 0;
  }

  bool WaitListening(uint16_t port, int timeout_ms = 10000) {
    for (int i = 0; i < timeout_ms / 10; ++i) {
      if (Listening(port)) return true;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "child exited before listening:\n" << Log();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "child not listening on " << port << ":\n" << Log();
    return false;
  }

  void Kill(int sig = SIGKILL) {
    if (pid_ > 0) kill(pid_, sig);
  }

  void Stop(int sig = SIGTERM) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    for (int i = 0; i < 200; ++i) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string Log() const {
    std::ifstream f(log_path_);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  pid_t pid() const { return pid_; }

 private:
  void RemoveLog() {
    if (!log_path_.empty()) unlink(log_path_.c_str());
    log_path_.clear();
  }

  pid_t pid_ = -1;
  std::string log_path_;
  static inline int counter_ = 0;
};

// A real memcached (binary protocol) on a free loopback port.
class Memcached {
 public:
  // threads > 1: connections are served in parallel, as in production (races show).
  // `item_max`: memcached's -I (its largest value), "" for its default (1 MiB).
  bool Start(int threads = 1, std::string item_max = "") {
    port_ = FreePort();
    std::vector<std::string> argv = {"/usr/bin/memcached",
                                     "-l",
                                     "127.0.0.1",
                                     "-p",
                                     std::to_string(port_),
                                     "-U",
                                     "0",
                                     "-m",
                                     "64",
                                     "-t",
                                     std::to_string(threads),
                                     "-B",
                                     "binary"};
    if (!item_max.empty()) {
      argv.push_back("-I");
      argv.push_back(item_max);
    }
    if (geteuid() == 0) {
      argv.push_back("-u");
      argv.push_back("nobody");
    }
    return proc_.Start(argv) && proc_.WaitListening(port_);
  }
  void Kill() { proc_.Kill(SIGKILL); }
  // Stalls it (SIGSTOP) or lets it go on (SIGCONT): connections stay open, unanswered.
  void Pause() { proc_.Kill(SIGSTOP); }
  void Resume() { proc_.Kill(SIGCONT); }
  // memcached takes up to a second to exit on SIGTERM; it keeps nothing we need.
  void Stop() { proc_.Stop(SIGKILL); }
  ~Memcached() { Stop(); }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  ChildProcess proc_;
  uint16_t port_ = 0;
};

// tools/lookupd (path from LOOKUPD_BIN) with the test routes file.
class Lookupd {
 public:
  bool Start(std::vector<std::string> extra = {}) {
    port_ = FreePort();
    const char* bin = getenv("LOOKUPD_BIN");
    const char* routes = getenv("LOOKUPD_ROUTES");
    if (bin == nullptr || routes == nullptr) {
      ADD_FAILURE() << "set LOOKUPD_BIN and LOOKUPD_ROUTES (meson test does)";
      return false;
    }
    log_ = "/tmp/ringproxy-test-lookupd-" + std::to_string(getpid()) + "-" + std::to_string(port_) +
           ".requests";
    unlink(log_.c_str());
    std::vector<std::string> argv = {
        bin, "--routes", routes, "--listen", "127.0.0.1:" + std::to_string(port_), "--request-log",
        log_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return proc_.Start(argv) && proc_.WaitListening(port_);
  }
  void Stop() { proc_.Stop(); }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Lookups answered (request-log lines of well-formed requests).
  int Requests() const {
    std::ifstream f(log_);
    std::string line;
    int n = 0;
    while (std::getline(f, line)) n += line.find(" method=") != std::string::npos;
    return n;
  }
  std::string RequestLog() const {
    std::ifstream f(log_);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  ~Lookupd() { unlink(log_.c_str()); }

 private:
  ChildProcess proc_;
  uint16_t port_ = 0;
  std::string log_;
};

}  // namespace ringproxy::testing
