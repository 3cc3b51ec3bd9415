#include "base/parse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace vmmd {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kKiB = 1ull << 10;
constexpr uint64_t kMiB = 1ull << 20;

TEST(ParseUnsigned, DecimalUpToUint64Max) {
  EXPECT_EQ(*parseUnsigned("0"), 0u);
  EXPECT_EQ(*parseUnsigned("42"), 42u);
  EXPECT_EQ(*parseUnsigned("18446744073709551615"), std::numeric_limits<uint64_t>::max());
}

TEST(ParseUnsigned, HexadecimalAfter0x) {
  EXPECT_EQ(*parseUnsigned("0x10"), 16u);
  EXPECT_EQ(*parseUnsigned("0X1f"), 31u);
  EXPECT_EQ(*parseUnsigned("0xFFFFFFFFFFFFFFFF"), std::numeric_limits<uint64_t>::max());
}

TEST(ParseUnsigned, RejectsOverflowSignsSpacesAndJunk) {
  for (const char* text : {"18446744073709551616", "0x10000000000000000", "-1", "+1", " 1", "1 ", "", "12abc", "1.5",
                           "0x", "0xg", "1k", "x10"}) {
    auto n = parseUnsigned(text);
    ASSERT_FALSE(n.ok()) << "'" << text << "' parsed as " << *n;
    EXPECT_EQ(n.error().message(), "'" + std::string(text) + "' is not a number");
  }
}

TEST(ParseUnsigned, RejectsWhatQemuWouldReadAsOctal) {
  for (const char* text : {"010", "00", "08"}) {
    auto n = parseUnsigned(text);
    ASSERT_FALSE(n.ok()) << text;
    EXPECT_THAT(n.error().message(), HasSubstr("octal"));
  }
}

TEST(ParseSize, BareNumberUsesTheDefaultUnit) {
  EXPECT_EQ(*parseSize("512", kMiB), 512 * kMiB);
  EXPECT_EQ(*parseSize("512", 1), 512u);
  EXPECT_EQ(*parseSize("4096"), 4096u);
  EXPECT_EQ(*parseSize("010k"), 10 * kKiB) << "sizes are decimal, as in QEMU";
}

TEST(ParseSize, SuffixesInEitherCaseArePowersOf1024) {
  EXPECT_EQ(*parseSize("100b", kMiB), 100u);
  EXPECT_EQ(*parseSize("100B", kMiB), 100u);
  EXPECT_EQ(*parseSize("64k", kMiB), 64 * kKiB);
  EXPECT_EQ(*parseSize("64K", kMiB), 64 * kKiB);
  EXPECT_EQ(*parseSize("512M"), 512 * kMiB);
  EXPECT_EQ(*parseSize("1m"), kMiB) << "the old storage parser knew only 'M'";
  EXPECT_EQ(*parseSize("2G"), 2ull << 30);
  EXPECT_EQ(*parseSize("2g"), 2ull << 30);
  EXPECT_EQ(*parseSize("1T"), 1ull << 40);
  EXPECT_EQ(*parseSize("2t"), 2ull << 40);
  EXPECT_EQ(*parseSize("3P"), 3ull << 50);
  EXPECT_EQ(*parseSize("15e"), 15ull << 60);
  EXPECT_EQ(*parseSize("0G"), 0u);
}

TEST(ParseSize, HexadecimalWithoutFractionOrSuffix) {
  EXPECT_EQ(*parseSize("0x1000"), 4096u);
  EXPECT_EQ(*parseSize("0x1B"), 27u) << "B is a hex digit there";
  EXPECT_EQ(*parseSize("0x20", kMiB), 32 * kMiB);
  for (const char* text : {"0x", "0x1.8", "0x20M", "0xg"}) EXPECT_FALSE(parseSize(text).ok()) << text;
}

TEST(ParseSize, LargestValuesThatFitAreAccepted) {
  EXPECT_EQ(*parseSize("16777215T"), 16777215ull << 40);
  EXPECT_EQ(*parseSize("17179869183G"), 17179869183ull << 30);
  EXPECT_EQ(*parseSize("18446744073709551615"), std::numeric_limits<uint64_t>::max());
}

TEST(ParseSize, OverflowIsAnError) {
  for (const char* text : {"16777216T", "16E", "18446744073709551616", "99999999999999999999G", "0x10000000000000000"}) {
    auto size = parseSize(text);
    ASSERT_FALSE(size.ok()) << text;
    EXPECT_EQ(size.error().message(), "size '" + std::string(text) + "' is too large");
  }
  auto bare = parseSize("17592186044416", kMiB);  // 2^44 MiB = 2^64
  ASSERT_FALSE(bare.ok());
  EXPECT_THAT(bare.error().message(), HasSubstr("is too large"));
  EXPECT_EQ(*parseSize("15.99999999E"), std::numeric_limits<uint64_t>::max() - 11529215045u);  // 16 EiB - 11529215046.07
  EXPECT_FALSE(parseSize("15.9999999999999999999E").ok()) << "rounds up to 2^64";
}

TEST(ParseSize, DecimalFractionsRoundToTheNearestByte) {
  EXPECT_EQ(*parseSize("1.5G"), 3ull << 29);
  EXPECT_EQ(*parseSize("0.5", kMiB), 512 * kKiB);
  EXPECT_EQ(*parseSize("2.25k"), 2304u);
  EXPECT_EQ(*parseSize("1.1k"), 1126u);    // 1126.4
  EXPECT_EQ(*parseSize("1.0005k"), 1025u);  // 1024.512
  EXPECT_EQ(*parseSize(".5G"), 512 * kMiB);
  EXPECT_EQ(*parseSize("1.G"), 1ull << 30);
  EXPECT_EQ(*parseSize("1.0"), 1u) << "a zero fraction is no fraction";
  EXPECT_EQ(*parseSize("0.0000000000000000000000001E"), 0u);
  auto fractional_bytes = parseSize("1.5");
  ASSERT_FALSE(fractional_bytes.ok());
  EXPECT_THAT(fractional_bytes.error().message(), HasSubstr("whole number of bytes"));
  EXPECT_FALSE(parseSize("1.5b", kMiB).ok());
}

TEST(ParseSize, JunkIsAnError) {
  EXPECT_EQ(parseSize("").error().message(), "empty size");
  for (const char* text : {"G", ".", ".G", "1.5.5G", "12X", "12Q", "x", "abc", "-1M", "+1M", " 1G", "1 G", "1GB", "1MiB",
                           "1KB", "M1", "1e3", "inf", "1,5G"}) {
    auto size = parseSize(text, kMiB);
    ASSERT_FALSE(size.ok()) << "'" << text << "' parsed as " << *size;
    EXPECT_EQ(size.error().message(),
              "'" + std::string(text) + "' is not a size (a number with an optional B, K, M, G, T, P or E suffix)");
  }
}

TEST(ParseOnOff, QemusSpellings) {
  for (const char* yes : {"on", "yes", "true", "y"}) EXPECT_TRUE(*parseOnOff(yes)) << yes;
  for (const char* no : {"off", "no", "false", "n"}) EXPECT_FALSE(*parseOnOff(no)) << no;
}

TEST(ParseOnOff, AnythingElseIsAnError) {
  for (const char* text : {"", "On", "ON", "1", "0", "maybe", "yes ", "enabled"}) {
    auto value = parseOnOff(text);
    ASSERT_FALSE(value.ok()) << text;
    EXPECT_EQ(value.error().message(), "'" + std::string(text) + "' is not on or off");
  }
}

TEST(ParseDiskCache, EveryQemuModeAndItsFlags) {
  struct Case {
    const char* text;
    DiskCache mode;
    bool direct;
    bool no_flush;
  };
  for (const Case& c : {Case{"writeback", DiskCache::kWriteback, false, false}, Case{"none", DiskCache::kNone, true, false},
                        Case{"off", DiskCache::kNone, true, false},
                        Case{"writethrough", DiskCache::kWritethrough, false, false},
                        Case{"directsync", DiskCache::kDirectsync, true, false},
                        Case{"unsafe", DiskCache::kUnsafe, false, true}}) {
    auto mode = parseDiskCache(c.text);
    ASSERT_TRUE(mode.ok()) << c.text;
    EXPECT_EQ(*mode, c.mode) << c.text;
    EXPECT_EQ(diskCacheFlags(*mode).direct, c.direct) << c.text;
    EXPECT_EQ(diskCacheFlags(*mode).no_flush, c.no_flush) << c.text;
  }
}

TEST(ParseDiskCache, NamesRoundTrip) {
  for (DiskCache mode : {DiskCache::kWriteback, DiskCache::kNone, DiskCache::kWritethrough, DiskCache::kDirectsync,
                         DiskCache::kUnsafe}) {
    EXPECT_EQ(*parseDiskCache(diskCacheName(mode)), mode) << diskCacheName(mode);
  }
  EXPECT_EQ(diskCacheName(*parseDiskCache("off")), "none");
}

TEST(ParseDiskCache, UnknownModeNamesTheChoices) {
  for (const char* text : {"", "fast", "None", "direct"}) {
    auto mode = parseDiskCache(text);
    ASSERT_FALSE(mode.ok()) << text;
    EXPECT_EQ(mode.error().message(),
              "cache mode '" + std::string(text) + "' is unknown (writeback, none, writethrough, directsync, unsafe)");
  }
}

}  // namespace
}  // namespace vmmd
