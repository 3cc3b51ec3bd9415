#include "vmm/boot/bzimage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/vmm/boot/test_images.h"

namespace vmmd::boot {
namespace {

using ::testing::HasSubstr;
using namespace vmmd::boot::testing;

class SetupHeaderTest : public ::testing::Test {
 protected:
  Result<SetupHeader> parse(const Bytes& bytes) {
    auto file = ImageFile::open(dir_.write("bzImage", bytes));
    if (!file) return file.error();
    return parseSetupHeader(*file);
  }
  std::string parseError(const Bytes& bytes) {
    auto header = parse(bytes);
    EXPECT_FALSE(header.ok()) << "parsed without error";
    return header.ok() ? std::string() : header.error().message();
  }
  std::string path() const { return dir_.path() + "/bzImage"; }

  TempDir dir_;
};

TEST_F(SetupHeaderTest, ParsesTheFieldsTheLoaderNeeds) {
  BzImageBuilder builder;
  Bytes bytes = builder.build();
  auto header = parse(bytes);
  ASSERT_TRUE(header.ok()) << header.error().message();
  EXPECT_EQ(header->version, 0x020f);
  EXPECT_EQ(header->setup_bytes, 5u * 512);
  EXPECT_EQ(header->initrd_addr_max, 0x37FFFFFFu);
  EXPECT_EQ(header->cmdline_size, 2048u);
  EXPECT_EQ(header->init_size, 0x400000u);
  EXPECT_TRUE(header->kernel64_entry);
  // first_page is the file's first 4 KiB.
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.begin() + bp::kSize, header->first_page.begin()));
}

TEST_F(SetupHeaderTest, FirstPageOfAShortFileIsZeroPadded) {
  BzImageBuilder builder;
  builder.payload_size = 16;  // the whole file is 2576 bytes
  auto header = parse(builder.build());
  ASSERT_TRUE(header.ok()) << header.error().message();
  EXPECT_EQ(header->first_page[2560 + 15], pattern(16, 3)[15]);
  EXPECT_EQ(header->first_page[2576], 0);
  EXPECT_EQ(header->first_page[bp::kSize - 1], 0);
}

TEST_F(SetupHeaderTest, ZeroSetupSectsMeansFour) {
  BzImageBuilder builder;
  builder.setup_sects = 0;
  auto header = parse(builder.build());
  ASSERT_TRUE(header.ok()) << header.error().message();
  EXPECT_EQ(header->setup_bytes, 5u * 512);
}

TEST_F(SetupHeaderTest, LooksLikeBzImageChecksHdrS) {
  auto good = ImageFile::open(dir_.write("good", BzImageBuilder().build()));
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(looksLikeBzImage(*good));
  BzImageBuilder bad;
  bad.magic = "HdrX";
  auto other = ImageFile::open(dir_.write("other", bad.build()));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(looksLikeBzImage(*other));
  auto tiny = ImageFile::open(dir_.write("tiny", Bytes(0x203, 0)));
  ASSERT_TRUE(tiny.ok());
  EXPECT_FALSE(looksLikeBzImage(*tiny));
}

TEST_F(SetupHeaderTest, OldProtocolVersion) {
  BzImageBuilder builder;
  builder.version = 0x020b;
  EXPECT_EQ(parseError(builder.build()),
            path() + ": boot protocol 2.11 is too old (2.12 or later needed for the 64-bit entry)");
}

TEST_F(SetupHeaderTest, OldestAcceptedVersionIs2_12) {
  BzImageBuilder builder;
  builder.version = 0x020c;
  auto header = parse(builder.build());
  ASSERT_TRUE(header.ok()) << header.error().message();
  EXPECT_EQ(header->version, 0x020c);
}

TEST_F(SetupHeaderTest, NoSixtyFourBitEntry) {
  BzImageBuilder builder;
  builder.xloadflags = 0x0002;  // XLF_CAN_BE_LOADED_ABOVE_4G without XLF_KERNEL_64
  EXPECT_EQ(parseError(builder.build()), path() + ": bzImage has no 64-bit entry point (XLF_KERNEL_64)");
}

TEST_F(SetupHeaderTest, NotLoadedHigh) {
  BzImageBuilder builder;
  builder.loadflags = 0;
  EXPECT_EQ(parseError(builder.build()), path() + ": bzImage is not loaded high (zImage?)");
}

TEST_F(SetupHeaderTest, BadBootFlag) {
  BzImageBuilder builder;
  builder.boot_flag = 0x55AA;
  EXPECT_EQ(parseError(builder.build()), path() + ": bad boot flag in setup header");
}

TEST_F(SetupHeaderTest, NoHdrSSignature) {
  BzImageBuilder builder;
  builder.magic = "hdrs";
  EXPECT_EQ(parseError(builder.build()), path() + ": no bzImage setup header (HdrS)");
}

TEST_F(SetupHeaderTest, TruncatedInsideTheHeader) {
  Bytes bytes = BzImageBuilder().build();
  bytes.resize(0x263);
  EXPECT_EQ(parseError(bytes), path() + ": too short for a bzImage setup header");
  EXPECT_EQ(parseError(Bytes{}), path() + ": too short for a bzImage setup header");
}

TEST_F(SetupHeaderTest, SetupAreaCoveringTheWholeFile) {
  Bytes bytes = BzImageBuilder().build();
  bytes.resize(5 * 512);  // setup only, no payload
  EXPECT_EQ(parseError(bytes), path() + ": setup area covers the whole file");
  BzImageBuilder huge_setup;
  Bytes big = huge_setup.build();
  big[bp::kSetupSects] = 200;  // claims 100 KiB of setup in a 10 KiB file
  EXPECT_EQ(parseError(big), path() + ": setup area covers the whole file");
}

}  // namespace
}  // namespace vmmd::boot
