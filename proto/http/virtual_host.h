// Virtual servers by Host (RFC 9110 §7.2; nginx's server_name order): an exact name,
// else the longest leading wildcard ("*.example.com"), else the longest trailing one
// ("mail.*"), else the default server; with no default (strict mode) an unknown host
// finds nothing and the proxy answers 400. Names compare without case, without the
// port and without a trailing dot. Pure, no allocation per lookup; not wired: no
// session calls it yet (issue 10's HTTP proxy will).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringproxy::http {

// Lower-case, port and trailing dot removed ("Mail.Example.COM.:443" ->
// "mail.example.com"; "[::1]:80" -> "[::1]"), into `buffer`; "" when it does not fit.
std::string_view NormalizeHost(std::string_view host, char (&buffer)[256]);

class VirtualHostIndex {
 public:
  // Adds one of a server's names ("mail.example.com", "*.example.com", "mail.*");
  // false with `*error` for an empty, malformed or already-taken name.
  bool Add(std::string_view name, int server, std::string* error);
  void SetDefault(int server) { default_ = server; }
  // Call once after the last Add().
  void Finish();
  // The server for a Host value; -1 when none matches and there is no default.
  int Find(std::string_view host) const;

 private:
  using Entry = std::pair<std::string, int>;
  std::vector<Entry> exact_;     // sorted by name
  std::vector<Entry> leading_;   // ".example.com", longest first
  std::vector<Entry> trailing_;  // "mail.", longest first
  int default_ = -1;
};

}  // namespace ringproxy::http
