#include "base/result.h"

#include <gtest/gtest.h>

namespace vmmd {
namespace {

Result<int> half(int n) {
  if (n % 2) return Error("half: " + std::to_string(n) + " is odd");
  return n / 2;
}

TEST(Result, HoldsValue) {
  auto r = half(8);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4);
}

TEST(Result, HoldsErrorWithMessage) {
  auto r = half(3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "half: 3 is odd");
  EXPECT_EQ(r.error().code(), 0);
}

TEST(Result, ErrnoErrorsKeepTheCodeAndGainContext) {
  Error e = Error::fromErrno("open disk.img", ENOENT).withContext("attach drive0");
  EXPECT_EQ(e.code(), ENOENT);
  EXPECT_EQ(e.message(), "attach drive0: open disk.img: No such file or directory");
}

TEST(Result, VoidStatus) {
  Status good;
  Status bad = Error("nope");
  EXPECT_TRUE(good.ok());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "nope");
}

TEST(Result, MovesOutValue) {
  Result<std::string> r = std::string(100, 'x');
  std::string s = std::move(r).value();
  EXPECT_EQ(s.size(), 100u);
}

}  // namespace
}  // namespace vmmd
