// Shared by the fuzz targets: a property violation aborts (libFuzzer and the replay
// driver both report it with the input).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "fuzz property failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                           \
    }                                                                                    \
  } while (0)

// True when `inner` lies within `outer` (views must point into the parsed input).
template <typename A, typename B>
bool Inside(const A& inner, const B& outer) {
  if (inner.empty()) return true;
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}
