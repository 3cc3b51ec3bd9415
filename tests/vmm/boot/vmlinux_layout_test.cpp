// A decompressed kernel made by hand: an ELF64 x86-64 header, two PT_LOAD segments 2 MiB further
// into the file than their place (as vmlinux has them) and the appended relocation table. Laid
// out in place, relocated, and every malformed variant refused before anything moves.
#include "vmm/boot/vmlinux_layout.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace vmmd::boot {
namespace {

constexpr uint64_t kLinkBase = 16u << 20;
constexpr uint64_t kShift = 0x3000;  // how far each segment sits past its place in the file
constexpr uint64_t kRoom = 0x20000;

// Kernel virtual address of offset `at` from the load address, as the relocation table holds it.
uint32_t vaddr32(uint64_t at) { return static_cast<uint32_t>(kStartKernelMap + kLinkBase + at); }

struct Image {
  std::vector<uint8_t> bytes;
  Elf64_Ehdr eh{};
  std::vector<Elf64_Phdr> phdrs;
  std::vector<uint32_t> relocs64{vaddr32(0x100)}, inverse32{vaddr32(0x108)}, relocs32{vaddr32(0x10c), vaddr32(0x1010)};
  bool with_table = true;
  size_t cut_at = 0;  // non-zero: the data ends there (a truncated image)
  bool first_terminator = true;  // the table's leading zero (the 64-bit list's end)

  Image() {
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_machine = EM_X86_64;
    eh.e_entry = kLinkBase + 0x10;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    // text: 0x200 file bytes at +0 (0x1000 in memory); data: 0x100 at +0x1000, 0x800 in memory.
    phdrs.push_back(segment(0x0, 0x200, 0x1000));
    phdrs.push_back(segment(0x1000, 0x100, 0x800));
  }
  static Elf64_Phdr segment(uint64_t at, uint64_t file_size, uint64_t memory_size) {
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_offset = at + kShift;
    ph.p_paddr = kLinkBase + at;
    ph.p_vaddr = kStartKernelMap + kLinkBase + at;
    ph.p_filesz = file_size;
    ph.p_memsz = memory_size;
    return ph;
  }
  // The decompressed data: headers, segment bytes (each byte its offset's low bits, the words
  // the table names set to known addresses), then the table.
  std::vector<uint8_t> build() {
    eh.e_phnum = static_cast<uint16_t>(phdrs.size());
    uint64_t end = 0;
    for (const auto& ph : phdrs) end = std::max(end, ph.p_offset + ph.p_filesz);
    bytes.assign(end, 0);
    std::memcpy(bytes.data(), &eh, sizeof eh);
    std::memcpy(bytes.data() + eh.e_phoff, phdrs.data(), phdrs.size() * sizeof(Elf64_Phdr));
    for (const auto& ph : phdrs) {
      for (uint64_t i = 0; i < ph.p_filesz; ++i) bytes[ph.p_offset + i] = static_cast<uint8_t>(0x40 + i);
    }
    put<uint64_t>(0x100, kStartKernelMap + kLinkBase + 0x1234);
    put<uint32_t>(0x108, 0x5000);
    put<uint32_t>(0x10c, vaddr32(0x40));
    put<uint32_t>(0x1010, vaddr32(0x80));
    if (with_table) {
      auto word = [&](uint32_t w) {
        uint8_t le[4];
        std::memcpy(le, &w, 4);
        bytes.insert(bytes.end(), le, le + 4);
      };
      if (first_terminator) word(0);
      for (uint32_t r : relocs64) word(r);
      word(0);
      for (uint32_t r : inverse32) word(r);
      word(0);
      for (uint32_t r : relocs32) word(r);
    }
    if (cut_at) bytes.resize(cut_at);
    return bytes;
  }
  // Writes a value at offset `at` from the load address, in the segment's file bytes.
  template <typename T>
  void put(uint64_t at, T value) {
    for (const auto& ph : phdrs) {
      uint64_t to = ph.p_paddr - kLinkBase;
      if (at >= to && at + sizeof(T) <= to + ph.p_filesz) std::memcpy(bytes.data() + ph.p_offset + (at - to), &value, sizeof(T));
    }
  }
};

template <typename T>
T read(const std::vector<uint8_t>& region, uint64_t at) {
  T value;
  std::memcpy(&value, region.data() + at, sizeof(T));
  return value;
}

std::vector<uint8_t> inRegion(const std::vector<uint8_t>& data) {
  std::vector<uint8_t> region(kRoom, 0xEE);
  std::copy(data.begin(), data.end(), region.begin());
  return region;
}

TEST(VmlinuxLayout, MovesSegmentsToTheirPlaceAndZeroesTheRest) {
  Image image;
  auto data = image.build();
  auto region = inRegion(data);
  auto layout = planVmlinux({region.data(), data.size()}, 0, kRoom, kLinkBase);
  ASSERT_TRUE(layout.ok()) << layout.error().message();
  EXPECT_TRUE(layout->relocatable);
  EXPECT_EQ(layout->entry, 0x10u);
  ASSERT_EQ(layout->segments.size(), 2u);
  buildVmlinux(*layout, region, 0);
  EXPECT_EQ(region[0x0], 0x40);
  EXPECT_EQ(region[0x1ff], static_cast<uint8_t>(0x40 + 0x1ff));
  EXPECT_EQ(region[0x200], 0) << "text's memory past its file bytes is zeroed";
  EXPECT_EQ(region[0xfff], 0);
  EXPECT_EQ(region[0x1000], 0x40);
  EXPECT_EQ(region[0x10ff], static_cast<uint8_t>(0x40 + 0xff));
  EXPECT_EQ(region[0x1100], 0);
  EXPECT_EQ(region[0x17ff], 0);
  // As linked (no offset), the addresses stay what they were.
  EXPECT_EQ(read<uint64_t>(region, 0x100), kStartKernelMap + kLinkBase + 0x1234);
  EXPECT_EQ(read<uint32_t>(region, 0x108), 0x5000u);
}

TEST(VmlinuxLayout, RelocatesByTheVirtualOffset) {
  Image image;
  auto data = image.build();
  auto region = inRegion(data);
  auto layout = planVmlinux({region.data(), data.size()}, 0, kRoom, kLinkBase);
  ASSERT_TRUE(layout.ok()) << layout.error().message();
  const uint64_t delta = 6u << 20;
  buildVmlinux(*layout, region, delta);
  EXPECT_EQ(read<uint64_t>(region, 0x100), kStartKernelMap + kLinkBase + 0x1234 + delta);
  EXPECT_EQ(read<uint32_t>(region, 0x108), static_cast<uint32_t>(0x5000u - delta));  // inverse
  EXPECT_EQ(read<uint32_t>(region, 0x10c), static_cast<uint32_t>(vaddr32(0x40) + delta));
  EXPECT_EQ(read<uint32_t>(region, 0x1010), static_cast<uint32_t>(vaddr32(0x80) + delta));
  EXPECT_EQ(region[0x110], static_cast<uint8_t>(0x40 + 0x110)) << "bytes no relocation names are untouched";
}

// Decompressed kShift below the load address, every segment of this image is already in place:
// nothing moves, and the relocations land at the same bytes.
TEST(VmlinuxLayout, DecompressedLowTheSegmentsAreInPlace) {
  Image image;
  auto data = image.build();
  std::vector<uint8_t> region(kShift + kRoom, 0xEE);
  std::copy(data.begin(), data.end(), region.begin());
  auto layout = planVmlinux({region.data(), data.size()}, kShift, kRoom, kLinkBase);
  ASSERT_TRUE(layout.ok()) << layout.error().message();
  for (const auto& s : layout->segments) EXPECT_EQ(s.from, s.to);
  EXPECT_EQ(layout->entry, 0x10u) << "the entry stays relative to the load address";
  const uint64_t delta = 2u << 20;
  buildVmlinux(*layout, region, delta);
  std::vector<uint8_t> loaded(region.begin() + kShift, region.end());
  EXPECT_EQ(loaded[0x0], 0x40);
  EXPECT_EQ(loaded[0x200], 0);
  EXPECT_EQ(read<uint64_t>(loaded, 0x100), kStartKernelMap + kLinkBase + 0x1234 + delta);
  EXPECT_EQ(read<uint32_t>(loaded, 0x1010), static_cast<uint32_t>(vaddr32(0x80) + delta));
}

// More lead than the image has before its first segment: that segment would have to move up.
TEST(VmlinuxLayout, TooMuchLeadIsRefused) {
  Image image;
  auto data = image.build();
  std::vector<uint8_t> region(2 * kShift + kRoom, 0xEE);
  std::copy(data.begin(), data.end(), region.begin());
  auto layout = planVmlinux({region.data(), data.size()}, 2 * kShift, kRoom, kLinkBase);
  ASSERT_FALSE(layout.ok());
  EXPECT_NE(layout.error().message().find("move up"), std::string::npos) << layout.error().message();
}

TEST(VmlinuxLayout, WithoutATableItIsNotRelocatable) {
  Image image;
  image.with_table = false;
  auto data = image.build();
  auto region = inRegion(data);
  auto layout = planVmlinux({region.data(), data.size()}, 0, kRoom, kLinkBase);
  ASSERT_TRUE(layout.ok()) << layout.error().message();
  EXPECT_FALSE(layout->relocatable);
  EXPECT_TRUE(layout->relocs32.empty());
}

// Each variant is refused by planVmlinux, before anything is written.
struct Malformed {
  const char* name;
  void (*spoil)(Image&);
  const char* says;
};

class VmlinuxLayoutRefuses : public ::testing::TestWithParam<Malformed> {};

TEST_P(VmlinuxLayoutRefuses, BeforeMovingAnything) {
  Image image;
  GetParam().spoil(image);
  auto data = image.build();
  auto region = inRegion(data);
  auto before = region;
  auto layout = planVmlinux({region.data(), data.size()}, 0, kRoom, kLinkBase);
  ASSERT_FALSE(layout.ok());
  EXPECT_NE(layout.error().message().find(GetParam().says), std::string::npos) << layout.error().message();
  EXPECT_EQ(region, before);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VmlinuxLayoutRefuses,
    ::testing::Values(
        Malformed{"NotElf", [](Image& i) { i.eh.e_ident[1] = 'X'; }, "not an ELF"},
        Malformed{"WrongMachine", [](Image& i) { i.eh.e_machine = EM_AARCH64; }, "x86-64"},
        Malformed{"TooManyHeaders", [](Image& i) { i.phdrs.resize(65, Image::segment(0x0, 0x10, 0x10)); }, "program headers"},
        Malformed{"SegmentPastData", [](Image& i) { i.cut_at = kShift + 0x1080; }, "runs past"},
        Malformed{"SegmentBelowLinkBase", [](Image& i) { i.phdrs[0].p_paddr = kLinkBase - 0x1000; }, "outside"},
        Malformed{"SegmentPastRoom", [](Image& i) { i.phdrs[1].p_memsz = kRoom; }, "outside"},
        Malformed{"FileBiggerThanMemory", [](Image& i) { i.phdrs[1].p_filesz = i.phdrs[1].p_memsz + 1; }, "runs past"},
        Malformed{"MovesUp", [](Image& i) { i.phdrs[1].p_offset = 0x800; }, "move up"},
        Malformed{"Overlapping", [](Image& i) { i.phdrs[1].p_paddr = kLinkBase + 0x800; }, "overlap"},
        Malformed{"EntryOutside", [](Image& i) { i.eh.e_entry = kLinkBase + 0x900; }, "not in a loaded segment"},
        Malformed{"RelocationOutside", [](Image& i) { i.relocs32.push_back(vaddr32(0x8000)); }, "outside the kernel image"},
        Malformed{"RelocationInZeroedPart", [](Image& i) { i.relocs64.push_back(vaddr32(0x400)); }, "outside the kernel image"},
        Malformed{"RelocationStraddlingTheEnd", [](Image& i) { i.relocs64.push_back(vaddr32(0x1fc)); }, "outside the kernel image"},
        Malformed{"RelocationBelowTheKernel", [](Image& i) { i.relocs32.push_back(0x1000); }, "outside the kernel image"},
        Malformed{"TableWithoutItsLastTerminator", [](Image& i) { i.first_terminator = false; }, "runs into the kernel image"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(VmlinuxLayout, ATableThatIsNotWholeWordsIsRefused) {
  Image image;
  auto data = image.build();
  data.push_back(0);
  auto region = inRegion(data);
  auto layout = planVmlinux({region.data(), data.size()}, 0, kRoom, kLinkBase);
  ASSERT_FALSE(layout.ok());
}

TEST(VmlinuxLayout, TooShortForAnElfHeader) {
  std::vector<uint8_t> data(16, 0);
  EXPECT_FALSE(planVmlinux(data, 0, kRoom, kLinkBase).ok());
}

}  // namespace
}  // namespace vmmd::boot
