#include "vmm/boot/bzimage.h"

#include <cstring>

namespace vmmd::boot {
namespace {

template <typename T>
T field(const std::array<uint8_t, bp::kSize>& page, uint32_t offset) {
  T value;
  std::memcpy(&value, &page[offset], sizeof(T));
  return value;
}

}  // namespace

bool looksLikeBzImage(const ImageFile& file) {
  uint8_t magic[4];
  return file.readAt(bp::kHeaderMagic, magic).ok() && std::memcmp(magic, "HdrS", 4) == 0;
}

Result<SetupHeader> parseSetupHeader(const ImageFile& file) {
  SetupHeader header{};
  header.first_page.fill(0);
  uint64_t available = std::min<uint64_t>(file.size(), bp::kSize);
  if (available < 0x264) return Error(file.path() + ": too short for a bzImage setup header");
  if (auto st = file.readAt(0, {header.first_page.data(), available}); !st) return st.error();
  const auto& page = header.first_page;
  if (std::memcmp(&page[bp::kHeaderMagic], "HdrS", 4) != 0) return Error(file.path() + ": no bzImage setup header (HdrS)");
  if (field<uint16_t>(page, bp::kBootFlag) != 0xAA55) return Error(file.path() + ": bad boot flag in setup header");

  header.version = field<uint16_t>(page, bp::kVersion);
  if (header.version < 0x020c) {
    return Error(file.path() + ": boot protocol " + std::to_string(header.version >> 8) + "." +
                 std::to_string(header.version & 0xff) + " is too old (2.12 or later needed for the 64-bit entry)");
  }
  uint32_t setup_sects = page[bp::kSetupSects];
  if (setup_sects == 0) setup_sects = 4;  // as the protocol says for old kernels
  header.setup_bytes = (setup_sects + 1) * 512;
  if (header.setup_bytes >= file.size()) return Error(file.path() + ": setup area covers the whole file");
  header.initrd_addr_max = field<uint32_t>(page, bp::kInitrdAddrMax);
  header.cmdline_size = field<uint32_t>(page, bp::kCmdlineSize);
  header.init_size = field<uint32_t>(page, bp::kInitSize);
  header.kernel64_entry = (field<uint16_t>(page, bp::kXLoadFlags) & bp::kXlfKernel64) != 0;
  header.relocatable = page[bp::kRelocatableKernel] != 0;
  header.kernel_alignment = field<uint32_t>(page, bp::kKernelAlignment);
  header.pref_address = field<uint64_t>(page, bp::kPrefAddress);
  header.payload_offset = field<uint32_t>(page, bp::kPayloadOffset);
  header.payload_length = field<uint32_t>(page, bp::kPayloadLength);
  if (!header.kernel64_entry) return Error(file.path() + ": bzImage has no 64-bit entry point (XLF_KERNEL_64)");
  if (!(page[bp::kLoadFlags] & bp::kLoadedHigh)) return Error(file.path() + ": bzImage is not loaded high (zImage?)");
  return header;
}

}  // namespace vmmd::boot
