// A decompressed x86-64 Linux kernel laid out in guest memory the way the kernel's own
// decompressor leaves it (Documentation/arch/x86/boot.rst; arch/x86/boot/compressed describes the
// format): the bzImage payload decompresses to "vmlinux.bin", an ELF64 image whose PT_LOAD
// segments belong at (p_paddr - LOAD_PHYSICAL_ADDR) from the load address, followed by the
// relocation table the build appends when the kernel can be moved in virtual memory (KASLR).
//
// The table, read backwards from the end of the decompressed data: 32-bit relocations up to a
// zero word, then inverse 32-bit relocations up to a zero, then 64-bit relocations up to a zero.
// Each entry is the low 32 bits of the kernel virtual address of a location that holds an
// absolute kernel address: moving the kernel by D adds D to a 32- or 64-bit location and
// subtracts it from an inverse one.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"

namespace vmmd::boot {

// Where x86-64 Linux maps its image: virtual = physical-at-link + kStartKernelMap.
inline constexpr uint64_t kStartKernelMap = 0xffffffff80000000ull;

// Offsets in a layout are from the region's start: `lead` bytes below the load address, so that
// decompressed data that starts there has its first segment already in place (x86-64 vmlinux
// keeps it one 2 MiB alignment unit into the file, after the headers): 32 of the Debian kernel's
// 46 MB then need no move.
struct VmlinuxLayout {
  struct Segment {
    uint64_t from;         // offset of its bytes in the decompressed data
    uint64_t to;           // offset of its place
    uint64_t file_size;
    uint64_t memory_size;  // the rest is zeroed
  };
  std::vector<Segment> segments;  // by ascending destination
  uint64_t entry = 0;             // offset of the 64-bit entry (startup_64) from the load address
  // Offsets of every location the relocation table names, by kind; all
  // inside a segment's file-backed bytes. Empty with relocatable = false when the image has no table.
  std::vector<uint32_t> relocs32, inverse32, relocs64;
  bool relocatable = false;
};

// Checks the decompressed kernel `data` (at the region's start, `lead` bytes below the load
// address: it is decompressed where the kernel will run) against `room`, the bytes from the load
// address the kernel may use (init_size), and reads its relocation table. `link_base` is the
// physical address the kernel was linked for. A layout that cannot be built in place (segments
// moving up, overlapping, or outside `room`), or a table that names locations outside the image,
// is an error.
Result<VmlinuxLayout> planVmlinux(std::span<const uint8_t> data, uint64_t lead, uint64_t room, uint64_t link_base);

// Builds the layout in `region` (lead + room bytes, holding the data planVmlinux checked at its
// start): moves the segments, zeroes what lies past their file bytes,
// and relocates the image by `virtual_delta` (0: it runs at the virtual address it was linked
// for; otherwise a multiple of 2 MiB, and the layout must be relocatable).
void buildVmlinux(const VmlinuxLayout& layout, std::span<uint8_t> region, uint64_t virtual_delta);

}  // namespace vmmd::boot
