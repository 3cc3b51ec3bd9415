#include "daemon/definition/identifiers.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace vmmd::daemon {
namespace {

TEST(VmName, AcceptsTheAllowedAlphabet) {
  for (const char* name : {"a", "web1", "db.prod_2-b", "_x", "0", "A.B-C_D"}) {
    EXPECT_TRUE(validateVmName(name).ok()) << name;
  }
  EXPECT_TRUE(validateVmName(std::string(64, 'x')).ok());
}

TEST(VmName, RefusesBadNamesWithAReason) {
  EXPECT_EQ(validateVmName("").error().message(), "must not be empty");
  EXPECT_EQ(validateVmName(std::string(65, 'x')).error().message(), "must be at most 64 characters");
  EXPECT_EQ(validateVmName(".hidden").error().message(), "must not start with '.' or '-'");
  EXPECT_EQ(validateVmName("-rf").error().message(), "must not start with '.' or '-'");
  for (const char* name : {"a/b", "a b", "a,b", "..\\x", "é", "a\nb", "a:b"}) {
    EXPECT_FALSE(validateVmName(name).ok()) << name;
  }
  EXPECT_FALSE(validateVmName(std::string("a\0b", 3)).ok());
}

TEST(Uuid, GeneratedIsVersion4AndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto uuid = generateUuid();
    ASSERT_TRUE(uuid.ok()) << uuid.error().message();
    ASSERT_EQ(uuid->size(), 36u);
    EXPECT_EQ((*uuid)[14], '4') << *uuid;                                       // version nibble
    EXPECT_NE(std::string("89ab").find((*uuid)[19]), std::string::npos) << *uuid;  // RFC 4122 variant
    auto canonical = canonicalUuid(*uuid);
    ASSERT_TRUE(canonical.ok());
    EXPECT_EQ(*canonical, *uuid);
    seen.insert(*uuid);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Uuid, CanonicalFormIsLowerCase) {
  auto uuid = canonicalUuid("3F2504E0-4F89-41D3-9A0C-0305E82C3301");
  ASSERT_TRUE(uuid.ok());
  EXPECT_EQ(*uuid, "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
  for (const char* bad : {"", "3f2504e0", "3f2504e0-4f89-41d3-9a0c-0305e82c330", "3f2504e0-4f89-41d3-9a0c-0305e82c33011",
                          "3f2504e04f8941d39a0c0305e82c3301", "3f2504e0-4f89-41d3-9a0c-0305e82c330g",
                          "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}"}) {
    EXPECT_FALSE(canonicalUuid(bad).ok()) << bad;
  }
}

TEST(Mac, GeneratedHasQemuPrefix) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    auto mac = generateMac();
    ASSERT_TRUE(mac.ok());
    EXPECT_EQ(mac->substr(0, 9), "52:54:00:") << *mac;
    EXPECT_TRUE(canonicalMac(*mac).ok()) << *mac;
    seen.insert(*mac);
  }
  EXPECT_GT(seen.size(), 45u);  // 24 random bits: a collision among 50 is very unlikely
}

TEST(Mac, Validates) {
  auto mac = canonicalMac("52:54:00:AB:cd:0F");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(*mac, "52:54:00:ab:cd:0f");
  EXPECT_EQ(canonicalMac("01:00:5e:00:00:01").error().message(),
            "must be a unicast address (the low bit of the first byte clear)");
  EXPECT_EQ(canonicalMac("00:00:00:00:00:00").error().message(), "must not be all zero");
  for (const char* bad : {"", "52:54:00:ab:cd", "52-54-00-ab-cd-ef", "52:54:00:ab:cd:eg", "52:54:00:ab:cd:ef:00"}) {
    EXPECT_FALSE(canonicalMac(bad).ok()) << bad;
  }
}

TEST(DeviceId, FollowsQemuRules) {
  EXPECT_TRUE(validateDeviceId("disk0").ok());
  EXPECT_TRUE(validateDeviceId("root.fs-1_a").ok());
  EXPECT_FALSE(validateDeviceId("").ok());
  EXPECT_FALSE(validateDeviceId("0disk").ok());
  EXPECT_FALSE(validateDeviceId("a,b").ok());
  EXPECT_FALSE(validateDeviceId(std::string(33, 'a')).ok());
}

TEST(Ifname, FollowsLinuxRules) {
  EXPECT_TRUE(validateIfname("tap0").ok());
  EXPECT_TRUE(validateIfname("vm-web1.0").ok());
  EXPECT_TRUE(validateIfname(std::string(15, 't')).ok());
  for (const char* bad : {"", ".", "..", "a/b", "a b", "a,b", "a:1", "tap\n"}) {
    EXPECT_FALSE(validateIfname(bad).ok()) << bad;
  }
  EXPECT_FALSE(validateIfname(std::string(16, 't')).ok());
}

}  // namespace
}  // namespace vmmd::daemon
