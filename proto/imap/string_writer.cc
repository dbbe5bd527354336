#include "proto/imap/string_writer.h"

namespace ringproxy::imap {

bool CanQuote(std::string_view value) {
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0 || c == '\r' || c == '\n' || c >= 0x80) return false;
  }
  return true;
}

void AppendQuoted(std::string_view value, std::string* out) {
  out->push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendLiteralHeader(size_t bytes, bool non_synchronising, std::string* out) {
  out->push_back('{');
  out->append(std::to_string(bytes));
  if (non_synchronising) out->push_back('+');
  out->append("}\r\n");
}

}  // namespace ringproxy::imap
