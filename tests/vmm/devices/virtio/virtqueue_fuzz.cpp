// libFuzzer: arbitrary bytes become the descriptor table, the avail ring and the data area of a
// queue; the walker must refuse or accept every chain without touching memory outside guest RAM
// (ASan would see it) and without looping.
#include <cstring>

#include "vmm/devices/virtio/virtqueue.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto memory = vmmd::GuestMemory::create(2 << 20);
  if (!memory.ok() || size < 4) return 0;
  uint16_t queue_size = static_cast<uint16_t>(1u << (data[0] % 9));  // 1..256
  bool event_idx = data[1] & 1;
  data += 2;
  size -= 2;
  // Descriptors at 0x1000, avail at 0x3000, used at 0x4000, everything else zero.
  uint8_t* ram = memory->hostAddress(0, 0x10000);
  std::memset(ram, 0, 0x10000);
  size_t table_bytes = std::min<size_t>(size, 16u * queue_size);
  std::memcpy(ram + 0x1000, data, table_bytes);
  size_t avail_bytes = std::min<size_t>(size - table_bytes, 6u + 2u * queue_size);
  std::memcpy(ram + 0x3000, data + table_bytes, avail_bytes);
  vmmd::virtio::Virtqueue queue;
  if (!queue.configure(*memory, {queue_size, 0x1000, 0x3000, 0x4000}, event_idx).ok()) return 0;
  for (int i = 0; i < 512; ++i) {
    auto chain = queue.pop();
    if (!chain.ok() || !chain->has_value()) break;
    uint32_t written = 0;
    for (auto& buffer : (*chain)->writable) {
      if (buffer.length) buffer.data[buffer.length - 1] = 0xEE;  // touch the ends the device may write
      written += buffer.length;
    }
    for (auto& buffer : (*chain)->readable) {
      if (buffer.length) written ^= buffer.data[0];
    }
    (void)queue.push((*chain)->head, written);
    (void)queue.shouldNotify();
  }
  return 0;
}
