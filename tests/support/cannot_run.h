// One rule for GoogleTest tests that need something a host may lack (a usable /dev/kvm, the
// nested tier's kernel kit): a developer's run skips them, saying why; under CI=true (or
// VMMD_NO_SKIP=1) they fail, because a green CI run must mean that every test ran. The Python
// tests follow the same rule (tests/support/vmmd_testlib/kvm_gate.py).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace vmmd::testing {

inline bool mustNotSkip() {
  const char* ci = std::getenv("CI");
  const char* no_skip = std::getenv("VMMD_NO_SKIP");
  return (ci && std::strcmp(ci, "true") == 0) || (no_skip && std::strcmp(no_skip, "1") == 0);
}

}  // namespace vmmd::testing

// VMMD_CANNOT_RUN("why" << detail): ends the test as skipped, or as failed under CI=true.
#define VMMD_CANNOT_RUN(why)                                                 \
  do {                                                                       \
    if (::vmmd::testing::mustNotSkip()) {                                    \
      GTEST_FAIL() << why << " (CI=true: a skipped test is a failure)";      \
    } else {                                                                 \
      GTEST_SKIP() << why;                                                   \
    }                                                                        \
  } while (0)
