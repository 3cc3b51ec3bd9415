// A bzImage's kernel decompressed by the worker instead of by the guest: the compressed payload
// the setup header points at is decompressed on the host straight into guest RAM and laid out
// as the kernel's own decompressor would (vmlinux_layout.h), and the boot vCPU enters the
// decompressed kernel's 64-bit entry with the same boot_params. What the guest skips is its
// decompressor: copying itself out of the way, decompressing, moving the segments and applying
// the relocations, one to two seconds of a boot under nested virtualisation.
// KASLR is kept: the worker picks a random physical place and a random virtual offset (applying
// the relocation table), as the decompressor does, and says so in boot_params (KASLR_FLAG);
// `nokaslr` on the command line keeps the kernel where it was linked, as it does the decompressor.
// Kernels this cannot handle (no payload fields, BZIP2/LZO, not relocatable) boot as before,
// through their own decompressor; VMM_KERNEL_EXTRACT=0 in the environment forces that path.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "base/result.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/image_file.h"
#include "vmm/boot/kernel_decompress.h"
#include "vmm/platform/guest_memory.h"

namespace vmmd::boot {

// Where a 64-bit kernel may be mapped: KERNEL_IMAGE_SIZE when KASLR is built in (the only case
// with a relocation table on x86-64).
inline constexpr uint64_t kKernelImageSize = 1ull << 30;

struct KernelPayload {
  Compression kind;
  uint64_t file_offset;  // in the bzImage
  uint64_t length;
  uint64_t link_base;    // pref_address
  uint64_t alignment;    // kernel_alignment, 2 MiB on x86-64
  uint64_t room;         // init_size: the bytes from its load address the kernel may use
};

// The compressed kernel of a relocatable bzImage in a format decompress() knows, or nullopt (the
// guest decompresses it itself). Never an error: anything unusual means the old path.
std::optional<KernelPayload> findKernelPayload(const ImageFile& file, const SetupHeader& header);
// False when VMM_KERNEL_EXTRACT=0 asks for the guest's own decompressor.
bool kernelExtractionEnabled();

struct ExtractedKernel {
  uint64_t physical;       // where it runs
  uint64_t entry;          // guest-physical address of its 64-bit entry
  uint64_t virtual_delta;  // how far it was moved from its link address in virtual memory
  bool randomized;         // KASLR applied: boot_params must say so
  // Where the worker's time went (its debug log says, for the boot profile).
  double read_ms = 0, decompress_ms = 0, layout_ms = 0;
};

// Picks a number below `bound` (> 0); the worker passes getrandom(2), tests a fixed sequence.
using RandomBelow = std::function<uint64_t(uint64_t bound)>;
uint64_t systemRandomBelow(uint64_t bound);

// Decompresses `payload` into guest RAM at `physical` (payload.room bytes there, aligned) and
// lays it out. With `randomize` and a relocation table, the kernel's virtual offset is random.
Result<ExtractedKernel> extractKernel(const ImageFile& file, const KernelPayload& payload, GuestMemory& memory,
                                      uint64_t physical, bool randomize, const RandomBelow& random_below);

}  // namespace vmmd::boot
