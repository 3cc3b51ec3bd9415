#include "vmm/boot/boot.h"

#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>

#include "tests/vmm/boot/test_images.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/pvh.h"
#include "vmm/platform/layout.h"

namespace vmmd::boot {
namespace {

using ::testing::HasSubstr;
using namespace vmmd::boot::testing;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRsdp = 0xE0000;

class LoadKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto memory = GuestMemory::create(64 * kMiB);
    ASSERT_TRUE(memory.ok()) << memory.error().message();
    memory_.emplace(std::move(*memory));
    // Garbage everywhere the loader writes, so "zeroed" and "untouched" can be told apart.
    std::memset(memory_->hostAddress(0, 8 * kMiB), 0xCC, 8 * kMiB);
  }

  GuestMemory& memory() { return *memory_; }
  const uint8_t* at(uint64_t address, uint64_t length = 1) {
    const uint8_t* host = memory_->hostAddress(address, length);
    EXPECT_NE(host, nullptr) << "address " << address;
    return host;
  }
  template <typename T>
  T read(uint64_t address) {
    T value{};
    EXPECT_TRUE(memory_->read(address, {reinterpret_cast<uint8_t*>(&value), sizeof value}).ok());
    return value;
  }
  std::string cString(uint64_t address) { return reinterpret_cast<const char*>(at(address)); }
  bool memoryEquals(uint64_t address, const Bytes& expected) {
    return std::memcmp(at(address, expected.size()), expected.data(), expected.size()) == 0;
  }

  BootRequest request(const std::string& kernel, const std::string& initrd = {}) {
    return BootRequest{kernel, initrd, "console=ttyS0 root=/dev/vda", kRsdp};
  }

  TempDir dir_;
  std::optional<GuestMemory> memory_;
};

// PVH

TEST_F(LoadKernelTest, PvhLoadsSegmentsAndZeroesBss) {
  std::string kernel = dir_.write("vmlinux", standardPvhElf(true).build());
  auto entry = loadKernel(memory(), request(kernel));
  ASSERT_TRUE(entry.ok()) << entry.error().message();
  EXPECT_EQ(entry->mode, BootEntry::Mode::Protected32);
  EXPECT_EQ(entry->entry, kPvhEntry);
  EXPECT_EQ(entry->boot_info, layout::kPvhStartInfo);
  EXPECT_STREQ(entry->protocol, "pvh");

  EXPECT_TRUE(memoryEquals(kTextAddress, pattern(kTextFileSize, 1)));
  EXPECT_TRUE(memoryEquals(kTextAddress + kTextFileSize, Bytes(kTextMemorySize - kTextFileSize, 0)));
  EXPECT_EQ(*at(kTextAddress + kTextMemorySize), 0xCC);  // nothing written past memsz
  EXPECT_TRUE(memoryEquals(kDataAddress, pattern(kDataFileSize, 2)));
  EXPECT_EQ(*at(kDataAddress + kDataFileSize), 0xCC);
}

TEST_F(LoadKernelTest, Pvh32BitElfLoadsToo) {
  std::string kernel = dir_.write("vmlinux32", standardPvhElf(false, 8).build());
  auto entry = loadKernel(memory(), request(kernel));
  ASSERT_TRUE(entry.ok()) << entry.error().message();
  EXPECT_EQ(entry->entry, kPvhEntry);
  EXPECT_TRUE(memoryEquals(kTextAddress, pattern(kTextFileSize, 1)));
}

TEST_F(LoadKernelTest, PvhStartInfoWithoutInitrd) {
  std::string kernel = dir_.write("vmlinux", standardPvhElf(true).build());
  ASSERT_TRUE(loadKernel(memory(), request(kernel)).ok());
  auto info = read<HvmStartInfo>(layout::kPvhStartInfo);
  EXPECT_EQ(info.magic, kHvmStartMagic);
  EXPECT_EQ(info.magic, 0x336ec578u);
  EXPECT_EQ(info.version, 1u);
  EXPECT_EQ(info.flags, 0u);
  EXPECT_EQ(info.nr_modules, 0u);
  EXPECT_EQ(info.modlist_paddr, 0u);
  EXPECT_EQ(info.cmdline_paddr, layout::kCmdline);
  EXPECT_EQ(cString(info.cmdline_paddr), "console=ttyS0 root=/dev/vda");
  EXPECT_EQ(info.rsdp_paddr, kRsdp);
  EXPECT_EQ(info.memmap_paddr, layout::kPvhMemmap);

  auto map = memory().memoryMap();
  ASSERT_EQ(info.memmap_entries, map.size());
  ASSERT_EQ(map.size(), 4u);
  for (size_t i = 0; i < map.size(); ++i) {
    auto entry = read<HvmMemmapEntry>(info.memmap_paddr + i * sizeof(HvmMemmapEntry));
    SCOPED_TRACE(i);
    EXPECT_EQ(entry.addr, map[i].address);
    EXPECT_EQ(entry.size, map[i].size);
    EXPECT_EQ(entry.type, static_cast<uint32_t>(map[i].type));
    EXPECT_EQ(entry.reserved, 0u);
  }
  // The last entry is the RAM above 1 MiB, to the end of the 64 MiB.
  auto last = read<HvmMemmapEntry>(info.memmap_paddr + 3 * sizeof(HvmMemmapEntry));
  EXPECT_EQ(last.addr, 1 * kMiB);
  EXPECT_EQ(last.size, 63 * kMiB);
  EXPECT_EQ(last.type, 1u);
}

TEST_F(LoadKernelTest, PvhInitrdGoesInTheModuleList) {
  std::string kernel = dir_.write("vmlinux", standardPvhElf(true).build());
  Bytes initrd_bytes = pattern(10000, 9);
  std::string initrd = dir_.write("initrd", initrd_bytes);
  ASSERT_TRUE(loadKernel(memory(), request(kernel, initrd)).ok());
  auto info = read<HvmStartInfo>(layout::kPvhStartInfo);
  EXPECT_EQ(info.nr_modules, 1u);
  EXPECT_EQ(info.modlist_paddr, layout::kPvhModlist);
  auto module = read<HvmModlistEntry>(info.modlist_paddr);
  EXPECT_EQ(module.size, initrd_bytes.size());
  EXPECT_EQ(module.cmdline_paddr, 0u);
  // As high as possible in RAM, page aligned.
  EXPECT_EQ(module.paddr, (64 * kMiB - initrd_bytes.size()) & ~uint64_t{0xFFF});
  EXPECT_TRUE(memoryEquals(module.paddr, initrd_bytes));
  // The start info, module list and memory map do not overlap.
  EXPECT_GE(layout::kPvhModlist, layout::kPvhStartInfo + sizeof(HvmStartInfo));
  EXPECT_GE(layout::kPvhMemmap, layout::kPvhModlist + sizeof(HvmModlistEntry));
}

TEST_F(LoadKernelTest, PvhSegmentBelowOneMiBIsRefused) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers[1].paddr = 0x8000;  // would overwrite the start info and page tables
  std::string kernel = dir_.write("vmlinux", elf.build());
  auto entry = loadKernel(memory(), request(kernel));
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.error().message(),
            kernel + ": ELF segment at 0x8000 (12288 bytes) lies outside usable guest RAM (64 MiB)");
}

TEST_F(LoadKernelTest, PvhSegmentBeyondRamIsRefused) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers[2].paddr = 64 * kMiB - 0x400;  // 0x800 bytes: straddles the end of RAM
  std::string kernel = dir_.write("vmlinux", elf.build());
  auto entry = loadKernel(memory(), request(kernel));
  ASSERT_FALSE(entry.ok());
  EXPECT_THAT(entry.error().message(), HasSubstr("ELF segment at 0x3fffc00 (2048 bytes) lies outside usable guest RAM"));
}

TEST_F(LoadKernelTest, PvhCommandLineTooLong) {
  std::string kernel = dir_.write("vmlinux", standardPvhElf(true).build());
  BootRequest req = request(kernel);
  req.cmdline = std::string(layout::kCmdlineMax, 'x');
  auto entry = loadKernel(memory(), req);
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.error().message(), "kernel command line is 65536 bytes; the kernel accepts at most 65535");
  req.cmdline.pop_back();
  EXPECT_TRUE(loadKernel(memory(), req).ok());
}

TEST_F(LoadKernelTest, PvhInitrdThatDoesNotFit) {
  std::string kernel = dir_.write("vmlinux", standardPvhElf(true).build());
  std::string initrd = dir_.writeSparse("initrd", 63 * kMiB);  // the kernel ends at 2 MiB + 2 KiB
  auto entry = loadKernel(memory(), request(kernel, initrd));
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.error().message(), "initrd " + initrd +
                                         " (64512 KiB) does not fit in guest memory between the kernel's end at "
                                         "0x200800 and 0x4000000; give the guest more memory (-m)");
}

TEST_F(LoadKernelTest, InitrdLargerThanRam) {
  std::string kernel = dir_.write("vmlinux", standardPvhElf(true).build());
  std::string initrd = dir_.writeSparse("initrd", 65 * kMiB);
  auto entry = loadKernel(memory(), request(kernel, initrd));
  ASSERT_FALSE(entry.ok());
  EXPECT_THAT(entry.error().message(), HasSubstr("does not fit in guest memory"));
}

TEST_F(LoadKernelTest, EmptyAndMissingInitrd) {
  std::string kernel = dir_.write("vmlinux", standardPvhElf(true).build());
  std::string empty = dir_.write("empty", {});
  auto e1 = loadKernel(memory(), request(kernel, empty));
  ASSERT_FALSE(e1.ok());
  EXPECT_EQ(e1.error().message(), "initrd " + empty + ": file is empty");
  auto e2 = loadKernel(memory(), request(kernel, dir_.path() + "/missing"));
  ASSERT_FALSE(e2.ok());
  EXPECT_EQ(e2.error().message(), "initrd: " + dir_.path() + "/missing: No such file or directory");
}

// bzImage

TEST_F(LoadKernelTest, BzImageEntryAndPayload) {
  BzImageBuilder builder;
  std::string kernel = dir_.write("bzImage", builder.build());
  auto entry = loadKernel(memory(), request(kernel));
  ASSERT_TRUE(entry.ok()) << entry.error().message();
  EXPECT_EQ(entry->mode, BootEntry::Mode::Long64);
  EXPECT_EQ(entry->entry, layout::kKernelLoad + 0x200);
  EXPECT_EQ(entry->boot_info, layout::kBootParams);
  EXPECT_STREQ(entry->protocol, "bzimage");
  // The protected-mode code (everything after the setup sectors) sits at 1 MiB.
  EXPECT_TRUE(memoryEquals(layout::kKernelLoad, pattern(builder.payload_size, 3)));
}

TEST_F(LoadKernelTest, BzImageBootParams) {
  BzImageBuilder builder;
  Bytes image = builder.build();
  std::string kernel = dir_.write("bzImage", image);
  Bytes initrd_bytes = pattern(5000, 7);
  std::string initrd = dir_.write("initrd", initrd_bytes);
  ASSERT_TRUE(loadKernel(memory(), request(kernel, initrd)).ok());

  const uint8_t* zp = at(layout::kBootParams, bp::kSize);
  // The setup header is copied from the file...
  EXPECT_EQ(std::memcmp(zp + 0x202, "HdrS", 4), 0);
  EXPECT_EQ(get<uint16_t>(zp, bp::kVersion), 0x020f);
  EXPECT_EQ(get<uint16_t>(zp, bp::kBootFlag), 0xAA55);
  EXPECT_EQ(zp[bp::kSetupSects], 4);
  EXPECT_EQ(get<uint32_t>(zp, bp::kInitSize), 0x400000u);
  EXPECT_EQ(get<uint16_t>(zp, bp::kXLoadFlags), 0x0003);
  // ...but only the header: the rest of the zero page starts out zeroed.
  EXPECT_EQ(get<uint32_t>(zp, 0x280), 0u);
  EXPECT_EQ(zp[0], 0);

  // The loader's fields.
  EXPECT_EQ(zp[bp::kTypeOfLoader], 0xFF);
  EXPECT_EQ(zp[bp::kLoadFlags], bp::kLoadedHigh | bp::kCanUseHeap);
  EXPECT_EQ(get<uint16_t>(zp, bp::kVidMode), 0xFFFF);
  EXPECT_EQ(get<uint16_t>(zp, bp::kHeapEndPtr), 0xFE00);
  EXPECT_EQ(get<uint32_t>(zp, bp::kCmdLinePtr), layout::kCmdline);
  EXPECT_EQ(get<uint32_t>(zp, bp::kExtCmdLinePtr), 0u);
  EXPECT_EQ(cString(layout::kCmdline), "console=ttyS0 root=/dev/vda");
  EXPECT_EQ(get<uint64_t>(zp, bp::kAcpiRsdpAddr), kRsdp);

  uint32_t ramdisk = get<uint32_t>(zp, bp::kRamdiskImage);
  EXPECT_EQ(ramdisk, (64 * kMiB - initrd_bytes.size()) & ~uint64_t{0xFFF});
  EXPECT_EQ(get<uint32_t>(zp, bp::kRamdiskSize), initrd_bytes.size());
  EXPECT_EQ(get<uint32_t>(zp, bp::kExtRamdiskImage), 0u);
  EXPECT_EQ(get<uint32_t>(zp, bp::kExtRamdiskSize), 0u);
  EXPECT_TRUE(memoryEquals(ramdisk, initrd_bytes));

  auto map = memory().memoryMap();
  ASSERT_EQ(zp[bp::kE820Entries], map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(get<uint64_t>(zp, bp::kE820Table + i * 20), map[i].address);
    EXPECT_EQ(get<uint64_t>(zp, bp::kE820Table + i * 20 + 8), map[i].size);
    EXPECT_EQ(get<uint32_t>(zp, bp::kE820Table + i * 20 + 16), static_cast<uint32_t>(map[i].type));
  }
  EXPECT_EQ(get<uint64_t>(zp, bp::kE820Table + 3 * 20), 1 * kMiB);
  EXPECT_EQ(get<uint64_t>(zp, bp::kE820Table + 3 * 20 + 8), 63 * kMiB);
}

TEST_F(LoadKernelTest, BzImageWithoutInitrdHasNoRamdisk) {
  std::string kernel = dir_.write("bzImage", BzImageBuilder().build());
  ASSERT_TRUE(loadKernel(memory(), request(kernel)).ok());
  const uint8_t* zp = at(layout::kBootParams, bp::kSize);
  EXPECT_EQ(get<uint32_t>(zp, bp::kRamdiskImage), 0u);
  EXPECT_EQ(get<uint32_t>(zp, bp::kRamdiskSize), 0u);
}

TEST_F(LoadKernelTest, BzImageBefore2_14GetsNoRsdpField) {
  BzImageBuilder builder;
  builder.version = 0x020d;
  std::string kernel = dir_.write("bzImage", builder.build());
  ASSERT_TRUE(loadKernel(memory(), request(kernel)).ok());
  EXPECT_EQ(get<uint64_t>(at(layout::kBootParams, bp::kSize), bp::kAcpiRsdpAddr), 0u);
}

TEST_F(LoadKernelTest, BzImageInitrdRespectsInitrdAddrMax) {
  BzImageBuilder builder;
  builder.initrd_addr_max = 32 * kMiB - 1;
  std::string kernel = dir_.write("bzImage", builder.build());
  std::string initrd = dir_.write("initrd", pattern(3000, 4));
  ASSERT_TRUE(loadKernel(memory(), request(kernel, initrd)).ok());
  uint32_t ramdisk = get<uint32_t>(at(layout::kBootParams, bp::kSize), bp::kRamdiskImage);
  EXPECT_EQ(ramdisk, 32 * kMiB - 0x1000);
}

TEST_F(LoadKernelTest, BzImageInitrdMustClearInitSize) {
  // The kernel decompresses into init_size bytes from 1 MiB: 60 MiB leaves 3 MiB for the initrd.
  BzImageBuilder builder;
  builder.init_size = 60 * kMiB;
  std::string kernel = dir_.write("bzImage", builder.build());
  std::string fits = dir_.writeSparse("fits", 3 * kMiB);
  EXPECT_TRUE(loadKernel(memory(), request(kernel, fits)).ok());
  std::string too_big = dir_.writeSparse("too_big", 3 * kMiB + 1);
  auto entry = loadKernel(memory(), request(kernel, too_big));
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.error().message(), "initrd " + too_big +
                                         " (3072 KiB) does not fit in guest memory between the kernel's end at "
                                         "0x3d00000 and 0x4000000; give the guest more memory (-m)");
}

TEST_F(LoadKernelTest, BzImageCommandLineLimitComesFromTheHeader) {
  BzImageBuilder builder;
  builder.cmdline_size = 100;
  std::string kernel = dir_.write("bzImage", builder.build());
  BootRequest req = request(kernel);
  req.cmdline = std::string(100, 'a');
  EXPECT_TRUE(loadKernel(memory(), req).ok());
  req.cmdline.push_back('a');
  auto entry = loadKernel(memory(), req);
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.error().message(), "kernel command line is 101 bytes; the kernel accepts at most 100");
}

TEST_F(LoadKernelTest, BzImageLargerThanRam) {
  std::string kernel = dir_.write("bzImage", BzImageBuilder().build());
  ASSERT_EQ(::truncate(kernel.c_str(), 5 * 512 + 64 * kMiB), 0);  // a sparse 64 MiB payload
  auto entry = loadKernel(memory(), request(kernel));
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.error().message(), "load kernel: " + kernel +
                                         ": 67108864 bytes at guest address 0x100000 do not fit in guest RAM (64 MiB)");
}

TEST_F(LoadKernelTest, BrokenBzImageHeaderIsReported) {
  BzImageBuilder builder;
  builder.version = 0x0200;
  std::string kernel = dir_.write("bzImage", builder.build());
  auto entry = loadKernel(memory(), request(kernel));
  ASSERT_FALSE(entry.ok());
  EXPECT_THAT(entry.error().message(), HasSubstr("boot protocol 2.0 is too old"));
}

// Neither

TEST_F(LoadKernelTest, FileThatIsNeither) {
  std::string kernel = dir_.write("README", Bytes(4096, 'x'));
  auto entry = loadKernel(memory(), request(kernel));
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.error().message(),
            "kernel " + kernel + ": neither a bzImage (no HdrS setup header) nor an ELF with a PVH entry note");
}

TEST_F(LoadKernelTest, ElfWithoutPvhNoteIsRefused) {
  ElfBuilder elf = standardPvhElf(true);
  elf.headers.erase(elf.headers.begin());
  std::string kernel = dir_.write("vmlinux", elf.build());
  auto entry = loadKernel(memory(), request(kernel));
  ASSERT_FALSE(entry.ok());
  EXPECT_THAT(entry.error().message(), HasSubstr("ELF without a PVH entry note"));
}

TEST_F(LoadKernelTest, MissingKernel) {
  auto entry = loadKernel(memory(), request(dir_.path() + "/nope"));
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.error().message(), "kernel: " + dir_.path() + "/nope: No such file or directory");
  EXPECT_EQ(entry.error().code(), ENOENT);
}

TEST_F(LoadKernelTest, DirectoryAsKernel) {
  auto entry = loadKernel(memory(), request(dir_.path()));
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.error().message(), "kernel: " + dir_.path() + ": not a regular file");
}

}  // namespace
}  // namespace vmmd::boot
