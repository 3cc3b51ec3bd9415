// PVH boot: an ELF kernel (32- or 64-bit) whose XEN_ELFNOTE_PHYS32_ENTRY note gives a 32-bit
// protected-mode entry point; the guest gets struct hvm_start_info (memory map, command line,
// modules, RSDP). Used by Linux's vmlinux, QEMU, Firecracker and Cloud Hypervisor.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "vmm/boot/image_file.h"

namespace vmmd::boot {

struct ElfLoadSegment {
  uint64_t file_offset;
  uint64_t file_size;
  uint64_t guest_address;  // p_paddr
  uint64_t memory_size;
};

struct PvhImage {
  uint64_t entry;
  std::vector<ElfLoadSegment> segments;
  uint64_t highest_address;  // end of the last segment in guest memory
};

// True when the file starts with the ELF magic.
bool looksLikeElf(const ImageFile& file);
// Parses headers and notes; fails when the ELF has no PVH entry note.
Result<PvhImage> parsePvhElf(const ImageFile& file);

// Layout of the Xen PVH start structures (xen/include/public/arch-x86/hvm/start_info.h).
constexpr uint32_t kHvmStartMagic = 0x336ec578;
struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);
struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

}  // namespace vmmd::boot
