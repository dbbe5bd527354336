// Feeds a chunked body to a ChunkedDecoder in reads of `step` bytes, as a session
// would: shared by the unit test and the fuzz target. `check(step, in)` sees each step
// with the input it was given.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

#include "proto/http/head.h"

namespace ringproxy::http::testing {

// Returns the decoded data; *used: the input consumed (the body's end, or the fault).
template <typename Check>
std::string DecodeInSteps(std::string_view text, size_t step, ChunkedDecoder* d, size_t* used,
                          Check check) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size() && !d->done() && !d->failed()) {
    std::string_view in = text.substr(pos, std::min(step, text.size() - pos));
    while (!in.empty() && !d->done() && !d->failed()) {
      ChunkedDecoder::Step s = d->Next(in);
      check(s, in);
      out.append(s.data);
      in.remove_prefix(s.consumed);
      pos += s.consumed;
    }
  }
  *used = pos;
  return out;
}

}  // namespace ringproxy::http::testing
