#include "vmm/boot/pvh.h"

#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/vmm/boot/test_images.h"

namespace vmmd::boot {
namespace {

using ::testing::HasSubstr;
using namespace vmmd::boot::testing;

class PvhElfTest : public ::testing::Test {
 protected:
  Result<PvhImage> parse(const Bytes& bytes) {
    auto file = ImageFile::open(dir_.write("kernel.elf", bytes));
    if (!file) return file.error();
    return parsePvhElf(*file);
  }
  std::string parseError(const Bytes& bytes) {
    auto image = parse(bytes);
    EXPECT_FALSE(image.ok()) << "parsed without error";
    return image.ok() ? std::string() : image.error().message();
  }
  std::string path() const { return dir_.path() + "/kernel.elf"; }

  TempDir dir_;
};

void expectStandardImage(const PvhImage& image) {
  EXPECT_EQ(image.entry, kPvhEntry);
  ASSERT_EQ(image.segments.size(), 2u);
  EXPECT_EQ(image.segments[0].file_offset, 0x1000u);
  EXPECT_EQ(image.segments[0].file_size, kTextFileSize);
  EXPECT_EQ(image.segments[0].guest_address, kTextAddress);
  EXPECT_EQ(image.segments[0].memory_size, kTextMemorySize);
  EXPECT_EQ(image.segments[1].file_offset, 0x2000u);
  EXPECT_EQ(image.segments[1].guest_address, kDataAddress);
  EXPECT_EQ(image.segments[1].file_size, kDataFileSize);
  EXPECT_EQ(image.highest_address, kDataAddress + kDataFileSize);
}

TEST_F(PvhElfTest, Elf64WithFourByteEntryNote) {
  auto image = parse(standardPvhElf(true, 4).build());
  ASSERT_TRUE(image.ok()) << image.error().message();
  expectStandardImage(*image);
}

TEST_F(PvhElfTest, Elf64WithEightByteEntryNote) {
  auto image = parse(standardPvhElf(true, 8).build());
  ASSERT_TRUE(image.ok()) << image.error().message();
  expectStandardImage(*image);
}

TEST_F(PvhElfTest, Elf32WithFourByteEntryNote) {
  auto image = parse(standardPvhElf(false, 4).build());
  ASSERT_TRUE(image.ok()) << image.error().message();
  expectStandardImage(*image);
}

TEST_F(PvhElfTest, Elf32WithEightByteEntryNote) {
  auto image = parse(standardPvhElf(false, 8).build());
  ASSERT_TRUE(image.ok()) << image.error().message();
  expectStandardImage(*image);
}

TEST_F(PvhElfTest, LooksLikeElfChecksTheMagic) {
  auto elf = ImageFile::open(dir_.write("a.elf", standardPvhElf(true).build()));
  ASSERT_TRUE(elf.ok());
  EXPECT_TRUE(looksLikeElf(*elf));
  auto text = ImageFile::open(dir_.write("a.txt", Bytes{'#', '!', '/', 'b', 'i', 'n'}));
  ASSERT_TRUE(text.ok());
  EXPECT_FALSE(looksLikeElf(*text));
  auto tiny = ImageFile::open(dir_.write("tiny", Bytes{0x7f, 'E'}));
  ASSERT_TRUE(tiny.ok());
  EXPECT_FALSE(looksLikeElf(*tiny));
}

TEST_F(PvhElfTest, EntryNoteInASecondNoteSegmentIsFound) {
  ElfBuilder elf = standardPvhElf(true);
  Bytes other = elfNote("GNU", 1, Bytes(16, 0));
  elf.headers.insert(elf.headers.begin(), {PT_NOTE, 0x180, 0x180, other.size(), other.size()});
  elf.place(0x180, other);
  auto image = parse(elf.build());
  ASSERT_TRUE(image.ok()) << image.error().message();
  EXPECT_EQ(image->entry, kPvhEntry);
}

TEST_F(PvhElfTest, EmptyLoadSegmentsAreSkipped) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers.push_back({PT_LOAD, 0, 0x300000, 0, 0});
  auto image = parse(elf.build());
  ASSERT_TRUE(image.ok()) << image.error().message();
  EXPECT_EQ(image->segments.size(), 2u);
}

TEST_F(PvhElfTest, NoEntryNote) {
  ElfBuilder elf = standardPvhElf(true);
  Bytes notes = elfNote("Xen", 6, {'l', 'i', 'n', 'u', 'x', 0});
  elf.headers[0].file_size = elf.headers[0].memory_size = notes.size();
  elf.contents[0].second = notes;
  EXPECT_EQ(parseError(elf.build()),
            path() + ": ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); cannot boot it");
}

TEST_F(PvhElfTest, NoNoteSegmentAtAll) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers.erase(elf.headers.begin());
  EXPECT_THAT(parseError(elf.build()), HasSubstr("ELF without a PVH entry note"));
}

TEST_F(PvhElfTest, EntryNoteFromAnotherVendorDoesNotCount) {
  ElfBuilder elf = standardPvhElf(true);
  Bytes notes = elfNote("Xe", 18, Bytes(4, 0x10));
  elf.headers[0].file_size = elf.headers[0].memory_size = notes.size();
  elf.contents[0].second = notes;
  EXPECT_THAT(parseError(elf.build()), HasSubstr("ELF without a PVH entry note"));
}

TEST_F(PvhElfTest, EntryNoteWithOddDescriptorSize) {
  ElfBuilder elf = standardPvhElf(true);
  Bytes notes = elfNote("Xen", 18, Bytes(2, 0x10));
  elf.headers[0].file_size = elf.headers[0].memory_size = notes.size();
  elf.contents[0].second = notes;
  EXPECT_EQ(parseError(elf.build()), path() + ": PVH entry note has 2 bytes");
}

TEST_F(PvhElfTest, NoteRunningPastItsSegment) {
  ElfBuilder elf = standardPvhElf(true);
  Bytes notes = elfNote("Xen", 18, Bytes(4, 0x10));
  put<uint32_t>(notes, 4, 0x1000);  // descsz far beyond the segment
  elf.headers[0].file_size = elf.headers[0].memory_size = notes.size();
  elf.contents[0].second = notes;
  EXPECT_EQ(parseError(elf.build()), path() + ": malformed ELF note");
}

TEST_F(PvhElfTest, NoteWithHugeSizesDoesNotWrap) {
  ElfBuilder elf = standardPvhElf(true);
  Bytes notes = elfNote("Xen", 18, Bytes(4, 0x10));
  put<uint32_t>(notes, 0, 0xFFFFFFFF);
  put<uint32_t>(notes, 4, 0xFFFFFFFF);
  elf.headers[0].file_size = elf.headers[0].memory_size = notes.size();
  elf.contents[0].second = notes;
  EXPECT_EQ(parseError(elf.build()), path() + ": malformed ELF note");
}

TEST_F(PvhElfTest, NoteSegmentTooLarge) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers[0].file_size = 2 << 20;
  EXPECT_EQ(parseError(elf.build()), path() + ": ELF note segment too large");
}

TEST_F(PvhElfTest, NoteSegmentPastEndOfFile) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers[0].offset = 0x100000;
  EXPECT_THAT(parseError(elf.build()), HasSubstr(path() + ": file too short"));
}

TEST_F(PvhElfTest, EntryAbove4GiB) {
  ElfBuilder elf = standardPvhElf(true);
  Bytes notes = pvhEntryNote(0x100000000, 8);
  elf.headers[0].file_size = elf.headers[0].memory_size = notes.size();
  elf.contents[0].second = notes;
  EXPECT_EQ(parseError(elf.build()), path() + ": PVH entry 0x100000000 is above 4 GiB");
}

TEST_F(PvhElfTest, TruncatedProgramHeaders) {
  Bytes bytes = standardPvhElf(true).build();
  bytes.resize(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 10);  // cut inside the second header
  EXPECT_THAT(parseError(bytes), HasSubstr(path() + ": file too short (wanted 56 bytes at offset 120"));
}

TEST_F(PvhElfTest, TruncatedElfHeader) {
  Bytes bytes = standardPvhElf(true).build();
  bytes.resize(40);
  EXPECT_THAT(parseError(bytes), HasSubstr("file too short"));
  Bytes tiny = {0x7f, 'E', 'L', 'F'};
  EXPECT_THAT(parseError(tiny), HasSubstr("file too short"));
}

TEST_F(PvhElfTest, SegmentPastEndOfFile) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers[2].file_size = 0x10000;
  elf.headers[2].memory_size = 0x10000;
  EXPECT_EQ(parseError(elf.build()), path() + ": ELF segment at offset 8192 runs past the end of the file");
}

TEST_F(PvhElfTest, SegmentOffsetBeyondFileWithHugeSize) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers[2].offset = 0xFFFFFFFFFFFFF000;
  elf.headers[2].file_size = 0x2000;  // offset + size wraps to a small number
  elf.headers[2].memory_size = 0x2000;
  EXPECT_THAT(parseError(elf.build()), HasSubstr("runs past the end of the file"));
}

TEST_F(PvhElfTest, FileSizeLargerThanMemorySize) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers[1].memory_size = kTextFileSize - 1;
  EXPECT_EQ(parseError(elf.build()), path() + ": ELF segment file size exceeds memory size");
}

TEST_F(PvhElfTest, SegmentWrappingAroundTheAddressSpace) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers[1].paddr = 0xFFFFFFFFFFFFF000;
  EXPECT_EQ(parseError(elf.build()), path() + ": ELF segment wraps around");
}

TEST_F(PvhElfTest, HugeProgramHeaderCount) {
  ElfBuilder elf = standardPvhElf(true);
  elf.phnum_override = 0xFFFF;
  EXPECT_EQ(parseError(elf.build()), path() + ": ELF has 65535 program headers");
  elf.phnum_override = 257;
  EXPECT_EQ(parseError(elf.build()), path() + ": ELF has 257 program headers");
}

TEST_F(PvhElfTest, ZeroProgramHeaders) {
  ElfBuilder elf = standardPvhElf(true);
  elf.phnum_override = 0;
  EXPECT_EQ(parseError(elf.build()), path() + ": ELF has 0 program headers");
}

TEST_F(PvhElfTest, WrongProgramHeaderSize) {
  ElfBuilder elf = standardPvhElf(true);
  elf.phentsize_override = 32;
  EXPECT_EQ(parseError(elf.build()), path() + ": bad ELF program header size");
  ElfBuilder elf32 = standardPvhElf(false);
  elf32.phentsize_override = 56;
  EXPECT_EQ(parseError(elf32.build()), path() + ": bad ELF program header size");
}

TEST_F(PvhElfTest, NothingToLoad) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers.resize(1);
  EXPECT_EQ(parseError(elf.build()), path() + ": ELF has nothing to load");
}

TEST_F(PvhElfTest, BigEndianAndUnknownClass) {
  Bytes big = standardPvhElf(true).build();
  big[EI_DATA] = ELFDATA2MSB;
  EXPECT_EQ(parseError(big), path() + ": not a little-endian ELF");
  Bytes odd = standardPvhElf(true).build();
  odd[EI_CLASS] = 7;
  EXPECT_EQ(parseError(odd), path() + ": unknown ELF class");
}

TEST_F(PvhElfTest, NotAnElf) {
  Bytes bytes(64, 'x');
  EXPECT_EQ(parseError(bytes), path() + ": not an ELF file");
}

}  // namespace
}  // namespace vmmd::boot
