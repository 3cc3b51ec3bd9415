// Linux x86 boot protocol (Documentation/arch/x86/boot.rst): the setup header of a bzImage, and
// the boot_params "zero page" the 64-bit entry point expects.
#pragma once

#include <array>
#include <cstdint>

#include "base/result.h"
#include "vmm/boot/image_file.h"

namespace vmmd::boot {

// Offsets into the setup header / boot_params (both share the layout from 0x1f1 on).
namespace bp {
constexpr uint32_t kSetupSects = 0x1f1;
constexpr uint32_t kVidMode = 0x1fa;
constexpr uint32_t kBootFlag = 0x1fe;
constexpr uint32_t kHeaderMagic = 0x202;  // "HdrS"
constexpr uint32_t kVersion = 0x206;
constexpr uint32_t kTypeOfLoader = 0x210;
constexpr uint32_t kLoadFlags = 0x211;
constexpr uint32_t kRamdiskImage = 0x218;
constexpr uint32_t kRamdiskSize = 0x21c;
constexpr uint32_t kHeapEndPtr = 0x224;
constexpr uint32_t kCmdLinePtr = 0x228;
constexpr uint32_t kInitrdAddrMax = 0x22c;
constexpr uint32_t kKernelAlignment = 0x230;
constexpr uint32_t kRelocatableKernel = 0x234;
constexpr uint32_t kXLoadFlags = 0x236;
constexpr uint32_t kCmdlineSize = 0x238;
constexpr uint32_t kPayloadOffset = 0x248;  // from the protected-mode code's start
constexpr uint32_t kPayloadLength = 0x24c;
constexpr uint32_t kPrefAddress = 0x258;
constexpr uint32_t kInitSize = 0x260;
constexpr uint32_t kAcpiRsdpAddr = 0x070;
constexpr uint32_t kExtRamdiskImage = 0x0c0;
constexpr uint32_t kExtRamdiskSize = 0x0c4;
constexpr uint32_t kExtCmdLinePtr = 0x0c8;
constexpr uint32_t kE820Entries = 0x1e8;
constexpr uint32_t kE820Table = 0x2d0;
constexpr uint32_t kE820MaxEntries = 128;
constexpr uint32_t kSize = 4096;
constexpr uint8_t kLoadedHigh = 0x01;
constexpr uint8_t kKaslrFlag = 0x02;  // set by the loader that randomised the kernel's place
constexpr uint8_t kCanUseHeap = 0x80;
constexpr uint16_t kXlfKernel64 = 0x01;
}  // namespace bp

struct SetupHeader {
  uint16_t version;          // boot protocol version, e.g. 0x020f
  uint32_t setup_bytes;      // real-mode part, (setup_sects + 1) * 512
  uint32_t initrd_addr_max;
  uint32_t cmdline_size;     // 0 before protocol 2.06 (then 255)
  uint32_t init_size;
  bool kernel64_entry;       // XLF_KERNEL_64: has the 64-bit entry at +0x200
  bool relocatable;          // may run at another physical address than pref_address
  uint32_t kernel_alignment;
  uint64_t pref_address;     // the physical address it was linked for (LOAD_PHYSICAL_ADDR)
  uint32_t payload_offset;   // the compressed kernel, from setup_bytes on (0: not said)
  uint32_t payload_length;
  std::array<uint8_t, bp::kSize> first_page;  // the file's first 4 KiB: seeds boot_params
};

// True when the file carries the "HdrS" setup-header signature.
bool looksLikeBzImage(const ImageFile& file);
Result<SetupHeader> parseSetupHeader(const ImageFile& file);

}  // namespace vmmd::boot
