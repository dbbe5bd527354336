// A reactor with a real memcached and a real lookupd, for the route tests that resolve
// end to end.
#pragma once

#include <memory>

#include "core/reactor.h"
#include "gtest/gtest.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

namespace ringproxy::testing {

class LiveRouteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = MakeReactor();
    ASSERT_TRUE(mc_.Start());
    ASSERT_TRUE(lookupd_.Start());
  }
  std::unique_ptr<Reactor> reactor_;
  Memcached mc_;
  Lookupd lookupd_;
};

}  // namespace ringproxy::testing
