// Direct kernel boot: recognises a Linux bzImage (x86 64-bit boot protocol) or an ELF with a PVH
// entry note, loads it with its initrd and command line into guest memory, and says how the boot
// vCPU must start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/file_opener.h"
#include "base/result.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/bzimage_extract.h"
#include "vmm/boot/image_file.h"
#include "vmm/boot/pvh.h"
#include "vmm/platform/guest_memory.h"

namespace vmmd::boot {

struct BootRequest {
  std::string kernel_path;
  std::string initrd_path;  // empty: none
  std::string cmdline;
  uint64_t rsdp_address = 0;
  const FileOpener* files = &plainFiles();  // opens the kernel and the initrd (the worker's fd sets)
  // Decompress a bzImage's kernel on the host (bzimage_extract.h) when its format allows.
  bool extract_kernel = kernelExtractionEnabled();
  RandomBelow random_below = systemRandomBelow;  // KASLR's choices
};

// How the boot processor starts.
struct BootEntry {
  enum class Mode {
    Protected32,  // PVH: 32-bit flat protected mode, paging off, %ebx = hvm_start_info
    Long64,       // Linux 64-bit boot protocol: identity-mapped long mode, %rsi = boot_params
  };
  Mode mode;
  uint64_t entry;
  uint64_t boot_info;  // hvm_start_info or boot_params address
  const char* protocol;  // "pvh" or "bzimage", for messages
};

// A kernel with its initrd and command line, checked against the guest's memory before anything
// else is built: the files stay open, their headers are parsed and every placement is worked out
// (so bad input is refused before /dev/kvm is opened), and loading, at every power-on, only
// copies bytes.
class KernelImage {
 public:
  static Result<KernelImage> open(const GuestMemory& memory, const BootRequest& request);

  // Writes kernel, command line, initrd and boot structures into `memory`, which has the size of
  // the memory open() checked against.
  Result<BootEntry> load(GuestMemory& memory) const;
  const char* protocol() const { return pvh_ ? "pvh" : "bzimage"; }

 private:
  KernelImage(BootRequest request, ImageFile kernel) : request_(std::move(request)), kernel_(std::move(kernel)) {}
  Status planPvh(const GuestMemory& memory);
  Status planBzImage(const GuestMemory& memory);
  Status openInitrd(const GuestMemory& memory, uint64_t kernel_end, uint64_t max_end);
  Status loadCmdlineAndInitrd(GuestMemory& memory) const;
  Result<BootEntry> loadPvh(GuestMemory& memory) const;
  Result<BootEntry> loadBzImage(GuestMemory& memory) const;
  // The bzImage's kernel decompressed into guest RAM, or nullopt (logged) when that fails and the
  // guest's own decompressor must run.
  std::optional<ExtractedKernel> extractBzImage(GuestMemory& memory) const;

  BootRequest request_;
  ImageFile kernel_;
  std::optional<PvhImage> pvh_;          // a PVH ELF, or
  std::optional<SetupHeader> bzimage_;   // a bzImage
  std::optional<KernelPayload> payload_;  // its compressed kernel, when the worker decompresses it
  std::optional<ImageFile> initrd_;
  uint64_t initrd_address_ = 0;
};

// KernelImage::open and load in one step.
Result<BootEntry> loadKernel(GuestMemory& memory, const BootRequest& request);

}  // namespace vmmd::boot
