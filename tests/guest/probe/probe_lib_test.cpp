// Host tests of the probe guest's pure helpers (probe_lib.h).
#include "probe_lib.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

uint8_t NaiveSum(const std::vector<uint8_t>& v) {
  uint8_t s = 0;
  for (uint8_t b : v) s = static_cast<uint8_t>(s + b);
  return s;
}

TEST(ProbeLib, ChecksumMatchesBytewiseSum) {
  std::mt19937 rng(42);
  for (size_t n : {0, 1, 7, 31, 32, 33, 1023, 1024, 1025, 1056, 4104, 8232, 70000}) {
    for (int fill : {-1, 0xFF, 0x80}) {
      std::vector<uint8_t> v(n);
      for (auto& b : v) b = static_cast<uint8_t>(fill < 0 ? rng() : fill);
      EXPECT_EQ(checksum(v.data(), v.size()), NaiveSum(v)) << "n=" << n << " fill=" << fill;
    }
  }
}

TEST(ProbeLib, ChecksumOfThisHostsAcpiTablesIsZero) {
  const std::filesystem::path dir = "/sys/firmware/acpi/tables";
  int checked = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (!e.is_regular_file() || e.path().filename() == "FACS") continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::vector<uint8_t> t((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (t.size() < 36) continue;
    EXPECT_EQ(checksum(t.data(), t.size()), 0) << e.path();
    checked++;
  }
  if (!checked) GTEST_SKIP() << "no readable ACPI tables under " << dir;
}

TEST(ProbeLib, FindByte) {
  const uint8_t buf[] = {1, 2, 3, 2, 1};
  EXPECT_EQ(find_byte(buf, buf + 5, 2), buf + 1);
  EXPECT_EQ(find_byte(buf + 2, buf + 5, 2), buf + 3);
  EXPECT_EQ(find_byte(buf, buf + 5, 9), buf + 5);
  EXPECT_EQ(find_byte(buf, buf + 3, 1), buf);
  EXPECT_EQ(find_byte(buf + 1, buf + 4, 1), buf + 4);  // the 1 at buf[4] is outside the range
  EXPECT_EQ(find_byte(buf + 5, buf + 5, 1), buf + 5);
}

TEST(ProbeLib, CmdlineWords) {
  EXPECT_TRUE(cmdline_has_word("reset", "reset"));
  EXPECT_TRUE(cmdline_has_word("a reset\tb", "reset"));
  EXPECT_TRUE(cmdline_has_word("  x2apic powerbutton ", "powerbutton"));
  EXPECT_FALSE(cmdline_has_word("resetx", "reset"));
  EXPECT_FALSE(cmdline_has_word("xreset", "reset"));
  EXPECT_FALSE(cmdline_has_word("", "reset"));
  EXPECT_FALSE(cmdline_has_word("a b", ""));
}

TEST(ProbeLib, S5FromBytePrefixedPackage) {
  // Name (_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })
  const uint8_t aml[] = {0x10, 0x08, '_', 'S', '5', '_', 0x12, 0x0A, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00, 0x00};
  uint8_t a = 0xEE, b = 0xEE;
  ASSERT_TRUE(aml_find_s5(aml, sizeof aml, &a, &b));
  EXPECT_EQ(a, 5);
  EXPECT_EQ(b, 5);
}

TEST(ProbeLib, S5QemuStyleZeroOpsAndRootPrefix) {
  // Name (\_S5, Package (0x04) { Zero, Zero, Zero, Zero }) as QEMU's q35 DSDT has it
  const uint8_t aml[] = {0x5B, 0x82, 0x08, '\\', '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00};
  uint8_t a = 0xEE, b = 0xEE;
  ASSERT_TRUE(aml_find_s5(aml, sizeof aml, &a, &b));
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
}

TEST(ProbeLib, S5NeedsNameAndPackage) {
  uint8_t a = 0, b = 0;
  const uint8_t no_name[] = {0x00, 0x70, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00};
  EXPECT_FALSE(aml_find_s5(no_name, sizeof no_name, &a, &b));
  const uint8_t no_pkg[] = {0x00, 0x08, '_', 'S', '5', '_', 0x0A, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_FALSE(aml_find_s5(no_pkg, sizeof no_pkg, &a, &b));
  const uint8_t s4[] = {0x00, 0x08, '_', 'S', '4', '_', 0x12, 0x06, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00};
  EXPECT_FALSE(aml_find_s5(s4, sizeof s4, &a, &b));
}

TEST(ProbeLib, GedRegion) {
  // OperationRegion (EREG, SystemMemory, 0xFEA00000, 0x04)
  std::vector<uint8_t> aml(8, 0x00);
  const uint8_t region[] = {0x5B, 0x80, 'E', 'R', 'E', 'G', 0x00, 0x0C, 0x00, 0x00, 0xA0, 0xFE, 0x0A, 0x04};
  aml.insert(aml.end(), std::begin(region), std::end(region));
  aml.resize(aml.size() + 16, 0x00);
  EXPECT_EQ(aml_find_ged(aml.data(), aml.size()), 0xFEA00000u);
  aml[8 + 6] = 0x01;  // SystemIO: not the GED
  EXPECT_EQ(aml_find_ged(aml.data(), aml.size()), 0u);
}

TEST(ProbeLib, PowerButtonHid) {
  std::vector<uint8_t> eisa(16, 0x00);
  const uint8_t id[] = {0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0C, 0x0C};
  eisa.insert(eisa.begin() + 4, std::begin(id), std::end(id));
  EXPECT_TRUE(aml_has_pwrbtn(eisa.data(), eisa.size()));
  const std::string s("xx\x08_HID\x0DPNP0C0C", 15);  // the match ends the buffer
  EXPECT_TRUE(aml_has_pwrbtn(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  const std::string sleep("xx\x08_HID\x0DPNP0C0E\0yyyy", 20);  // sleep button
  EXPECT_FALSE(aml_has_pwrbtn(reinterpret_cast<const uint8_t*>(sleep.data()), sleep.size()));
}

}  // namespace
