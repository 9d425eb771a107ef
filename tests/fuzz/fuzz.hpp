// Shared by the fuzz targets: an invariant that must hold for any input.
// A failure names the target, file and line, then aborts, which libFuzzer
// reports as a crash and saves the input.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_REQUIRE(cond)                                                                                             \
  do {                                                                                                                 \
    if (!(cond)) {                                                                                                     \
      std::fprintf(stderr, "fuzz: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
      std::abort();                                                                                                    \
    }                                                                                                                  \
  } while (false)
