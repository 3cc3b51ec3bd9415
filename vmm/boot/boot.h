// Direct kernel boot: one entry point that recognises a Linux bzImage (x86 64-bit boot protocol)
// or an ELF with a PVH entry note, loads it with its initrd and command line into guest memory,
// and says how the boot vCPU must start.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "vmm/machine/guest_memory.h"

namespace vmmd::boot {

struct BootRequest {
  std::string kernel_path;
  std::string initrd_path;  // empty: none
  std::string cmdline;
  uint64_t rsdp_address = 0;
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

Result<BootEntry> loadKernel(GuestMemory& memory, const BootRequest& request);

}  // namespace vmmd::boot
