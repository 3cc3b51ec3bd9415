#include "vmm/acpi/aml.h"

#include <gtest/gtest.h>

namespace vmmd::acpi::aml {
namespace {

Bytes chars(const std::string& text) { return Bytes(text.begin(), text.end()); }
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// Decodes a PkgLength the way an AML interpreter does; returns the encoded value.
size_t decodePkgLength(const Bytes& bytes) {
  size_t follow = bytes[0] >> 6;
  if (follow == 0) return bytes[0] & 0x3F;
  size_t value = bytes[0] & 0x0F;
  for (size_t i = 0; i < follow; ++i) value |= size_t{bytes[1 + i]} << (4 + 8 * i);
  return value;
}

TEST(AmlPkgLength, OneByteUpTo63IncludingItself) {
  EXPECT_EQ(pkgLength(0), Bytes{0x01});
  EXPECT_EQ(pkgLength(1), Bytes{0x02});
  EXPECT_EQ(pkgLength(62), Bytes{0x3F});
}

TEST(AmlPkgLength, TwoBytesFrom63BodyBytes) {
  // 63 body bytes + 1 would be 64: no longer fits 6 bits, so 2 bytes: 65 = 0x41.
  EXPECT_EQ(pkgLength(63), (Bytes{0x41, 0x04}));
  EXPECT_EQ(pkgLength(64), (Bytes{0x42, 0x04}));
  EXPECT_EQ(pkgLength(4093), (Bytes{0x4F, 0xFF}));  // 4095: the largest 2-byte value
}

TEST(AmlPkgLength, ThreeBytesFrom4094BodyBytes) {
  EXPECT_EQ(pkgLength(4094), (Bytes{0x81, 0x00, 0x01}));  // 4097
  EXPECT_EQ(pkgLength(4095), (Bytes{0x82, 0x00, 0x01}));
  EXPECT_EQ(pkgLength(4096), (Bytes{0x83, 0x00, 0x01}));
  EXPECT_EQ(pkgLength((1 << 20) - 4), (Bytes{0x8F, 0xFF, 0xFF}));  // 2^20 - 1
}

TEST(AmlPkgLength, FourBytesFromOneMiB) {
  EXPECT_EQ(pkgLength((1 << 20) - 3), (Bytes{0xC1, 0x00, 0x00, 0x01}));  // 2^20 + 1
  EXPECT_EQ(pkgLength((1 << 28) - 5), (Bytes{0xCF, 0xFF, 0xFF, 0xFF}));
}

TEST(AmlPkgLength, EveryLengthAroundTheBoundariesRoundTripsInTheShortestForm) {
  for (size_t length : {size_t{0}, size_t{61}, size_t{62}, size_t{63}, size_t{64}, size_t{65}, size_t{4092},
                        size_t{4093}, size_t{4094}, size_t{4095}, size_t{4096}, size_t{4097}, size_t{(1 << 20) - 5},
                        size_t{(1 << 20) - 4}, size_t{(1 << 20) - 3}, size_t{1 << 20}}) {
    SCOPED_TRACE(length);
    Bytes encoded = pkgLength(length);
    ASSERT_FALSE(encoded.empty());
    EXPECT_EQ(decodePkgLength(encoded), length + encoded.size());
    size_t expected_size = length + 1 <= 63 ? 1 : length + 2 <= 4095 ? 2 : length + 3 < (1 << 20) ? 3 : 4;
    EXPECT_EQ(encoded.size(), expected_size);
    if (encoded.size() > 1) {
      EXPECT_EQ(encoded[0] & 0x30, 0) << "bits 5:4 of a multi-byte lead must be 0";
    }
  }
}

TEST(AmlNameString, SingleSegmentsArePaddedWithUnderscores) {
  EXPECT_EQ(nameString("COM1"), chars("COM1"));
  EXPECT_EQ(nameString("RTC"), chars("RTC_"));
  EXPECT_EQ(nameString("_S5"), chars("_S5_"));
}

TEST(AmlNameString, RootPrefix) {
  EXPECT_EQ(nameString("\\_SB"), cat({{0x5C}, chars("_SB_")}));
  EXPECT_EQ(nameString("\\_S5_"), cat({{0x5C}, chars("_S5_")}));
}

TEST(AmlNameString, DualAndMultiNamePaths) {
  EXPECT_EQ(nameString("\\_SB.PCI0"), cat({{0x5C, 0x2E}, chars("_SB_PCI0")}));
  EXPECT_EQ(nameString("_SB.COM1"), cat({{0x2E}, chars("_SB_COM1")}));
  EXPECT_EQ(nameString("\\_SB.PCI0.ISA.COM1"), cat({{0x5C, 0x2F, 0x04}, chars("_SB_PCI0ISA_COM1")}));
}

TEST(AmlNameString, RootAloneAndEmptyAreNullNames) {
  EXPECT_EQ(nameString("\\"), (Bytes{0x5C, 0x00}));
  EXPECT_EQ(nameString(""), Bytes{0x00});
}

TEST(AmlInteger, ZeroAndOneHaveTheirOwnOpcodes) {
  EXPECT_EQ(integer(0), Bytes{0x00});
  EXPECT_EQ(integer(1), Bytes{0x01});
}

TEST(AmlInteger, SmallestPrefixThatHoldsTheValue) {
  EXPECT_EQ(integer(2), (Bytes{0x0A, 0x02}));
  EXPECT_EQ(integer(0xFF), (Bytes{0x0A, 0xFF}));
  EXPECT_EQ(integer(0x100), (Bytes{0x0B, 0x00, 0x01}));
  EXPECT_EQ(integer(0xFFFF), (Bytes{0x0B, 0xFF, 0xFF}));
  EXPECT_EQ(integer(0x10000), (Bytes{0x0C, 0x00, 0x00, 0x01, 0x00}));
  EXPECT_EQ(integer(0xFFFFFFFF), (Bytes{0x0C, 0xFF, 0xFF, 0xFF, 0xFF}));
  EXPECT_EQ(integer(0x100000000), (Bytes{0x0E, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}));
  EXPECT_EQ(integer(0x0123456789ABCDEF), (Bytes{0x0E, 0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01}));
}

TEST(AmlString, PrefixAndTerminatingNul) {
  EXPECT_EQ(string("abc"), (Bytes{0x0D, 'a', 'b', 'c', 0x00}));
  EXPECT_EQ(string(""), (Bytes{0x0D, 0x00}));
}

TEST(AmlEisaId, CompressesPnpIds) {
  auto value = [](const Bytes& encoded) {
    EXPECT_EQ(encoded.size(), 5u);
    EXPECT_EQ(encoded[0], 0x0C);  // DWordPrefix
    return uint32_t{encoded[1]} | uint32_t{encoded[2]} << 8 | uint32_t{encoded[3]} << 16 | uint32_t{encoded[4]} << 24;
  };
  EXPECT_EQ(value(eisaId("PNP0501")), 0x0105D041u);
  EXPECT_EQ(value(eisaId("PNP0B00")), 0x000BD041u);
  EXPECT_EQ(value(eisaId("PNP0b00")), 0x000BD041u);  // hex digits in either case
  EXPECT_EQ(value(eisaId("PNP0A03")), 0x030AD041u);  // the PCI host bridge, as iasl encodes it
}

TEST(AmlName, NameOpNameStringValue) {
  EXPECT_EQ(name("_UID", integer(1)), cat({{0x08}, chars("_UID"), {0x01}}));
  EXPECT_EQ(name("\\_S5_", integer(5)), cat({{0x08, 0x5C}, chars("_S5_"), {0x0A, 0x05}}));
}

TEST(AmlPackage, CountThenElements) {
  EXPECT_EQ(package({integer(1), integer(2)}), (Bytes{0x12, 0x05, 0x02, 0x01, 0x0A, 0x02}));
  EXPECT_EQ(package({}), (Bytes{0x12, 0x02, 0x00}));
}

TEST(AmlPackage, LongPackageUsesTwoBytePkgLength) {
  std::vector<Bytes> elements(40, integer(0x1234));  // 40 * 3 + 1 = 121 body bytes
  Bytes encoded = package(elements);
  ASSERT_EQ(encoded.size(), 1u + 2u + 121u);
  EXPECT_EQ(encoded[0], 0x12);
  EXPECT_EQ(decodePkgLength({encoded[1], encoded[2]}), 123u);
  EXPECT_EQ(encoded[3], 40);
}

TEST(AmlScopeAndDevice, WrapNameAndBody) {
  EXPECT_EQ(scope("\\_SB", {}), cat({{0x10, 0x06, 0x5C}, chars("_SB_")}));
  EXPECT_EQ(device("COM1", {}), cat({{0x5B, 0x82, 0x05}, chars("COM1")}));
  Bytes body = name("_UID", integer(1));
  EXPECT_EQ(device("COM1", body), cat({{0x5B, 0x82, 0x0B}, chars("COM1"), body}));
}

TEST(AmlResources, IoPortAndIrqDescriptors) {
  EXPECT_EQ(ioPort(0x3F8, 8), (Bytes{0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08}));
  EXPECT_EQ(ioPort(0x70, 2), (Bytes{0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02}));
  EXPECT_EQ(irq(4), (Bytes{0x22, 0x10, 0x00}));
  EXPECT_EQ(irq(8), (Bytes{0x22, 0x00, 0x01}));
  EXPECT_EQ(irq(9), (Bytes{0x22, 0x00, 0x02}));
}

TEST(AmlResources, ResourceTemplateIsABufferWithEndTag) {
  Bytes descriptors = cat({ioPort(0x3F8, 8), irq(4)});
  Bytes expected = cat({{0x11, 0x10, 0x0A, 0x0D}, descriptors, {0x79, 0x00}});
  EXPECT_EQ(resourceTemplate(descriptors), expected);
}

}  // namespace
}  // namespace vmmd::acpi::aml
