// A hostile firmware driving fw_cfg: every input byte sequence becomes port writes and reads
// (selector, data, DMA address halves) and guest-RAM contents (DMA descriptors with any control,
// length and address). Under ASan/UBSan a host access outside guest RAM or an overflow is a crash.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "vmm/devices/fw_cfg.h"

namespace {

constexpr uint64_t kRam = 1 << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto memory = vmmd::GuestMemory::create(2 * kRam);
  if (!memory) return 0;
  vmmd::FwCfg fw_cfg(*memory);
  (void)fw_cfg.addFile("etc/e820", std::vector<uint8_t>(40, 0x11));
  (void)fw_cfg.addFile("bootorder", {'/', '\n'});
  size_t at = 0;
  auto take = [&](size_t n) -> const uint8_t* {
    if (at + n > size) return nullptr;
    const uint8_t* p = data + at;
    at += n;
    return p;
  };
  while (const uint8_t* op = take(1)) {
    switch (*op % 6) {
      case 0:
        if (const uint8_t* p = take(2)) fw_cfg.write(vmmd::FwCfg::kSelectorOffset, {p, 2});
        break;
      case 1: {
        uint8_t byte[4];
        fw_cfg.read(vmmd::FwCfg::kDataOffset, {byte, static_cast<size_t>(1 + (*op >> 4) % 4)});
        break;
      }
      case 2:
        if (const uint8_t* p = take(4)) fw_cfg.write(vmmd::FwCfg::kDmaOffset, {p, 4});
        break;
      case 3:
        if (const uint8_t* p = take(4)) fw_cfg.write(vmmd::FwCfg::kDmaOffset + 4, {p, 4});
        break;
      case 4:  // a descriptor (or any bytes) into guest RAM, at an offset the input picks
        if (const uint8_t* p = take(20)) {
          uint32_t offset;
          std::memcpy(&offset, p, 4);
          (void)memory->write(offset % (2 * kRam), {p + 4, 16});
        }
        break;
      case 5: {
        uint8_t byte[8];
        uint64_t offset = (*op >> 3) % vmmd::FwCfg::kPortLength;
        fw_cfg.read(offset, {byte, static_cast<size_t>(1 + (*op >> 5) % 4)});
        break;
      }
    }
  }
  return 0;
}
