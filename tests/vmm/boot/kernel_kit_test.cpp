// The real Debian cloud kernel the nested tier caches (tests/guest/kit): its bzImage and the
// vmlinux extracted from it must parse and load. Skipped, saying so, when the cache is not there
// (a failure under CI=true; scripts/test.sh builds the kit first).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/cannot_run.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/bzimage_extract.h"
#include "vmm/boot/kernel_decompress.h"
#include "vmm/boot/pvh.h"
#include "vmm/boot/vmlinux_layout.h"
#include "vmm/platform/layout.h"

namespace vmmd::boot {
namespace {

namespace fs = std::filesystem;

// ${VMMD_CACHE:-$HOME/.cache/vmmd}/kit/<kernel version>/{bzImage,vmlinux}; VMMD_KERNEL_KIT_DIR
// (a directory holding both) wins when set, so CMake or CI can point at a kit elsewhere.
struct KernelKit {
  std::string dir;
  std::string bzimage;
  std::string vmlinux;
};

std::string cacheDir() {
  if (const char* cache = std::getenv("VMMD_CACHE"); cache && *cache) return cache;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/vmmd";
}

std::optional<KernelKit> findKernelKit() {
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("VMMD_KERNEL_KIT_DIR"); dir && *dir) {
    candidates.push_back(dir);
  } else {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(cacheDir() + "/kit", ec)) {
      if (entry.is_directory()) candidates.push_back(entry.path().string());
    }
    std::sort(candidates.begin(), candidates.end());
  }
  for (const auto& dir : candidates) {
    KernelKit kit{dir, dir + "/bzImage", dir + "/vmlinux"};
    if (fs::is_regular_file(kit.bzimage) && fs::is_regular_file(kit.vmlinux)) return kit;
  }
  return std::nullopt;
}

#define SKIP_WITHOUT_KIT(kit)                                                                                  \
  if (!(kit)) {                                                                                                \
    VMMD_CANNOT_RUN("no kernel kit: neither $VMMD_KERNEL_KIT_DIR nor "                                          \
                    << cacheDir() << "/kit/*/ holds bzImage + vmlinux (tests/guest/kit/build.sh creates them)"); \
  }

TEST(KernelKit, DebianBzImageHasA64BitEntry) {
  auto kit = findKernelKit();
  SKIP_WITHOUT_KIT(kit);
  auto file = ImageFile::open(kit->bzimage);
  ASSERT_TRUE(file.ok()) << file.error().message();
  EXPECT_TRUE(looksLikeBzImage(*file));
  EXPECT_FALSE(looksLikeElf(*file));
  auto header = parseSetupHeader(*file);
  ASSERT_TRUE(header.ok()) << header.error().message();
  EXPECT_GE(header->version, 0x020c) << kit->bzimage;
  EXPECT_TRUE(header->kernel64_entry);
  EXPECT_GT(header->cmdline_size, 255u);
  EXPECT_GT(header->init_size, file->size() - header->setup_bytes);  // it decompresses into more
  EXPECT_LT(header->setup_bytes, 64u * 1024);
}

TEST(KernelKit, DebianVmlinuxHasAPvhEntryNote) {
  auto kit = findKernelKit();
  SKIP_WITHOUT_KIT(kit);
  auto file = ImageFile::open(kit->vmlinux);
  ASSERT_TRUE(file.ok()) << file.error().message();
  EXPECT_TRUE(looksLikeElf(*file));
  EXPECT_FALSE(looksLikeBzImage(*file));
  auto image = parsePvhElf(*file);
  ASSERT_TRUE(image.ok()) << image.error().message();
  ASSERT_FALSE(image->segments.empty());
  // Linux links at 16 MiB physical; the PVH entry (pvh_start_xen) lies in the first segment.
  EXPECT_EQ(image->segments[0].guest_address, 16u << 20);
  EXPECT_GE(image->entry, image->segments[0].guest_address);
  EXPECT_LT(image->entry, image->segments[0].guest_address + image->segments[0].memory_size);
  EXPECT_GT(image->highest_address, 16u << 20);
  EXPECT_LT(image->highest_address, 256u << 20);
}

TEST(KernelKit, DebianKernelsLoadIntoGuestMemory) {
  auto kit = findKernelKit();
  SKIP_WITHOUT_KIT(kit);
  auto memory = GuestMemory::create(256 << 20);
  ASSERT_TRUE(memory.ok());
  auto bz = loadKernel(*memory, {kit->bzimage, "", "console=ttyS0", 0xE0000});
  ASSERT_TRUE(bz.ok()) << bz.error().message();
  EXPECT_EQ(bz->mode, BootEntry::Mode::Long64);
  EXPECT_EQ(std::memcmp(memory->hostAddress(layout::kBootParams + 0x202, 4), "HdrS", 4), 0);

  // With the kit's initramfs when it has one: the ramdisk fields describe it.
  std::string initramfs = kit->dir + "/initramfs.cpio";
  if (fs::is_regular_file(initramfs)) {
    auto with_initrd = loadKernel(*memory, {kit->bzimage, initramfs, "console=ttyS0", 0xE0000});
    ASSERT_TRUE(with_initrd.ok()) << with_initrd.error().message();
    uint32_t ramdisk_size = 0, ramdisk_image = 0;
    std::memcpy(&ramdisk_image, memory->hostAddress(layout::kBootParams + bp::kRamdiskImage, 4), 4);
    std::memcpy(&ramdisk_size, memory->hostAddress(layout::kBootParams + bp::kRamdiskSize, 4), 4);
    EXPECT_EQ(ramdisk_size, fs::file_size(initramfs));
    EXPECT_EQ(ramdisk_image % 4096, 0u);
    auto file = ImageFile::open(initramfs);
    ASSERT_TRUE(file.ok());
    std::vector<uint8_t> head(std::min<uint64_t>(4096, file->size()));
    ASSERT_TRUE(file->readAt(0, head).ok());
    EXPECT_EQ(std::memcmp(memory->hostAddress(ramdisk_image, head.size()), head.data(), head.size()), 0);
  }

  auto pvh = loadKernel(*memory, {kit->vmlinux, "", "console=ttyS0", 0xE0000});
  ASSERT_TRUE(pvh.ok()) << pvh.error().message();
  EXPECT_EQ(pvh->mode, BootEntry::Mode::Protected32);
  EXPECT_GE(pvh->entry, 16u << 20);
}

std::vector<uint8_t> readWhole(const std::string& path) {
  auto file = ImageFile::open(path);
  EXPECT_TRUE(file.ok()) << path;
  if (!file.ok()) return {};
  std::vector<uint8_t> bytes(file->size());
  EXPECT_TRUE(file->readAt(0, bytes).ok());
  return bytes;
}

// The worker's decompression of the Debian bzImage gives exactly the vmlinux the kit extracted
// from it (tests/guest/kit: the payload decompressed by Debian's lz4 tool).
TEST(KernelKit, DebianBzImageDecompressesToItsVmlinux) {
  auto kit = findKernelKit();
  SKIP_WITHOUT_KIT(kit);
  auto file = ImageFile::open(kit->bzimage);
  ASSERT_TRUE(file.ok());
  auto header = parseSetupHeader(*file);
  ASSERT_TRUE(header.ok());
  auto payload = findKernelPayload(*file, *header);
  ASSERT_TRUE(payload.has_value()) << "no payload the worker can decompress";
  EXPECT_EQ(payload->link_base, 16u << 20);
  EXPECT_EQ(payload->alignment, 2u << 20);
  auto compressed = file->read(payload->file_offset, payload->length);
  ASSERT_TRUE(compressed.ok()) << compressed.error().message();
  std::vector<uint8_t> out(payload->room);
  auto size = decompress(payload->kind, compressed->bytes(), out);
  ASSERT_TRUE(size.ok()) << size.error().message();
  std::vector<uint8_t> vmlinux = readWhole(kit->vmlinux);
  ASSERT_EQ(*size, vmlinux.size()) << compressionName(payload->kind);
  EXPECT_TRUE(std::equal(vmlinux.begin(), vmlinux.end(), out.begin()));
  // Decoded on four threads (lz4's blocks in parallel; the other formats on one): the same bytes.
  std::vector<uint8_t> threaded(payload->room);
  auto threaded_size = decompress(payload->kind, compressed->bytes(), threaded, 4);
  ASSERT_TRUE(threaded_size.ok()) << threaded_size.error().message();
  EXPECT_EQ(*threaded_size, *size);
  EXPECT_TRUE(std::equal(vmlinux.begin(), vmlinux.end(), threaded.begin()));

  // Its relocation table: plenty of each kind, every entry inside the image.
  auto layout = planVmlinux({out.data(), *size}, 0, payload->room, payload->link_base);
  ASSERT_TRUE(layout.ok()) << layout.error().message();
  EXPECT_TRUE(layout->relocatable);
  EXPECT_GT(layout->relocs32.size(), 1000u);
  EXPECT_GT(layout->relocs64.size(), 100u);
  EXPECT_EQ(layout->entry, 0u);  // startup_64 opens the image
}

// Loaded by the worker, the kernel sits where its segments say (nokaslr: at its link address),
// and with KASLR at the place and virtual offset the random source picked, every location its
// relocation table names moved by the offset, and boot_params says KASLR_FLAG.
TEST(KernelKit, DebianBzImageIsLaidOutAsItsDecompressorWould) {
  auto kit = findKernelKit();
  SKIP_WITHOUT_KIT(kit);
  std::vector<uint8_t> vmlinux = readWhole(kit->vmlinux);
  ASSERT_FALSE(vmlinux.empty());
  std::vector<uint8_t> scratch(vmlinux.begin(), vmlinux.end());
  scratch.resize(64u << 20);
  auto layout = planVmlinux({scratch.data(), vmlinux.size()}, 0, scratch.size(), 16u << 20);
  ASSERT_TRUE(layout.ok()) << layout.error().message();

  auto memory = GuestMemory::create(256 << 20);
  ASSERT_TRUE(memory.ok());
  uint8_t loadflags = 0;
  BootRequest plain{kit->bzimage, "", "console=ttyS0 nokaslr", 0xE0000};
  plain.extract_kernel = true;
  auto entry = loadKernel(*memory, plain);
  ASSERT_TRUE(entry.ok()) << entry.error().message();
  EXPECT_EQ(entry->mode, BootEntry::Mode::Long64);
  EXPECT_EQ(entry->entry, 16u << 20);
  for (const auto& s : layout->segments) {
    uint64_t at = (16u << 20) + s.to;
    EXPECT_EQ(std::memcmp(memory->hostAddress(at, s.file_size), &vmlinux[s.from], s.file_size), 0) << "segment at +" << s.to;
  }
  std::memcpy(&loadflags, memory->hostAddress(layout::kBootParams + bp::kLoadFlags, 1), 1);
  EXPECT_FALSE(loadflags & bp::kKaslrFlag);

  // Slot 3 of the physical places (16 + 3 * 2 MiB), slot 5 of the virtual ones (10 MiB).
  auto fresh = GuestMemory::create(256 << 20);
  ASSERT_TRUE(fresh.ok());
  std::vector<uint64_t> picks{3, 5};
  BootRequest randomized{kit->bzimage, "", "console=ttyS0", 0xE0000};
  randomized.extract_kernel = true;
  randomized.random_below = [&picks](uint64_t bound) {
    uint64_t pick = picks.front();
    picks.erase(picks.begin());
    EXPECT_LT(pick, bound);
    return pick;
  };
  auto moved = loadKernel(*fresh, randomized);
  ASSERT_TRUE(moved.ok()) << moved.error().message();
  const uint64_t physical = (16u + 6) << 20, delta = 10u << 20;
  EXPECT_EQ(moved->entry, physical);
  std::memcpy(&loadflags, fresh->hostAddress(layout::kBootParams + bp::kLoadFlags, 1), 1);
  EXPECT_TRUE(loadflags & bp::kKaslrFlag);
  auto word_at = [&](const std::vector<uint32_t>& offsets, size_t i, auto zero) {
    decltype(zero) linked, loaded;
    const auto& s = *std::find_if(layout->segments.begin(), layout->segments.end(), [&](const auto& seg) {
      return offsets[i] >= seg.to && offsets[i] < seg.to + seg.file_size;
    });
    std::memcpy(&linked, &vmlinux[s.from + (offsets[i] - s.to)], sizeof linked);
    std::memcpy(&loaded, fresh->hostAddress(physical + offsets[i], sizeof loaded), sizeof loaded);
    return std::pair{linked, loaded};
  };
  for (size_t i : {size_t{0}, layout->relocs32.size() / 2, layout->relocs32.size() - 1}) {
    auto [linked, loaded] = word_at(layout->relocs32, i, uint32_t{});
    EXPECT_EQ(loaded, static_cast<uint32_t>(linked + delta)) << "32-bit relocation " << i;
  }
  for (size_t i : {size_t{0}, layout->relocs64.size() - 1}) {
    auto [linked, loaded] = word_at(layout->relocs64, i, uint64_t{});
    EXPECT_EQ(loaded, linked + delta) << "64-bit relocation " << i;
  }
  for (size_t i = 0; i < layout->inverse32.size() && i < 4; ++i) {
    auto [linked, loaded] = word_at(layout->inverse32, i, uint32_t{});
    EXPECT_EQ(loaded, static_cast<uint32_t>(linked - delta)) << "inverse relocation " << i;
  }
}

}  // namespace
}  // namespace vmmd::boot
