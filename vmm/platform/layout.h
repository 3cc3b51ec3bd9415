// Where things live in guest-physical memory. One place, so the boot loaders, the ACPI builder and
// the e820 map agree.
#pragma once

#include <cstdint>

namespace vmmd::layout {

constexpr uint64_t kGdt = 0x500;              // boot GDT (null, null, code, data, tss)
constexpr uint64_t kPvhStartInfo = 0x6000;    // struct hvm_start_info
constexpr uint64_t kPvhModlist = 0x6040;      // hvm_modlist_entry[1]
constexpr uint64_t kPvhMemmap = 0x6100;       // hvm_memmap_table_entry[]
constexpr uint64_t kBootParams = 0x7000;      // Linux zero page
constexpr uint64_t kPml4 = 0x9000;            // identity page tables for the 64-bit entry
constexpr uint64_t kPdpt = 0xA000;
constexpr uint64_t kPageDirs = 0xB000;        // four page directories: 4 GiB in 2 MiB pages
constexpr uint64_t kCmdline = 0x20000;
constexpr uint64_t kCmdlineMax = 0x10000;     // bytes, including the NUL
constexpr uint64_t kEbdaStart = 0x9FC00;      // top of base memory as a PC has it
constexpr uint64_t kBiosAreaStart = 0xE0000;  // ACPI tables; the RSDP first (legacy scan range)
constexpr uint64_t kBiosAreaEnd = 0x100000;
constexpr uint64_t kResetVector = 0xFFFF0;    // F000:FFF0, the last 16 bytes of the BIOS area
constexpr uint64_t kKernelLoad = 0x100000;    // bzImage protected-mode code
constexpr uint64_t kPciHoleStart = 0xC0000000;  // RAM above this moves above 4 GiB
constexpr uint64_t kFourGiB = 0x100000000;
constexpr uint64_t kIoApic = 0xFEC00000;
constexpr uint64_t kLocalApic = 0xFEE00000;
constexpr uint64_t kTssAddress = 0xFFFBD000;    // KVM_SET_TSS_ADDR needs 3 pages below 4 GiB
constexpr uint64_t kIdentityMap = 0xFFFBC000;   // KVM_SET_IDENTITY_MAP_ADDR, one page

// e820 / PVH memory map entry types.
enum class E820Type : uint32_t { Ram = 1, Reserved = 2, Acpi = 3 };

}  // namespace vmmd::layout
