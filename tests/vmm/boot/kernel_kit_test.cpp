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
#include "vmm/boot/pvh.h"
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

}  // namespace
}  // namespace vmmd::boot
