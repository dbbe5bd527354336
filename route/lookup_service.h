// The reference lookup service's logic (what Zimbra's NLE servlet decides, spec §1.4,
// for the cases ringproxy needs): a directory of domains, mailbox servers and accounts
// loaded from a TOML routes file, and Decide(request) -> reply. No I/O here; the
// network side is route/lookup_server.h, the program tools/lookupd.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "route/lookup_codec.h"

namespace ringproxy {

struct Directory {
  struct Domain {
    std::string name;
    std::vector<std::string> virtual_ips;
    std::vector<std::string> virtual_hosts;
  };
  struct Server {
    std::string name;
    std::string address;
    std::map<std::string, uint16_t> ports;  // protocol -> port
  };
  struct Account {
    std::string name;  // user@domain
    std::string id;
    int server = -1;
    bool admin = false;
  };

  std::string default_domain;
  int auth_wait_s = 10;
  std::vector<Domain> domains;
  std::vector<Server> servers;
  std::vector<Account> accounts;
  absl::flat_hash_map<std::string, int> by_name;  // names and aliases -> account
  absl::flat_hash_map<std::string, int> by_id;

  // Parses a routes file; errors name the file, line and key.
  static absl::StatusOr<std::shared_ptr<const Directory>> Parse(std::string_view text,
                                                                std::string_view path);
  static absl::StatusOr<std::shared_ptr<const Directory>> Load(const std::string& path);
};

struct Decision {
  bool ok = false;
  std::string status;  // failure text
  std::string server;
  uint16_t port = 0;
  std::string user;  // canonical account (unescaped)
  bool cache_alias = false;
  int wait_s = 10;
  std::string auth_id;
  std::string auth_pass;
  std::string log;  // one line for the request log
};

Decision Decide(const Directory& dir, const lookup::ParsedRequest& request);

}  // namespace ringproxy
