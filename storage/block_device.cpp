#include "storage/block_device.h"

namespace vmmd::storage {

Result<void> BlockDevice::readv(uint64_t offset, ReadVector bufs) {
  for (const auto& b : bufs) {
    if (auto r = read(offset, b); !r) return r;
    offset += b.size();
  }
  return {};
}

Result<void> BlockDevice::writev(uint64_t offset, WriteVector bufs) {
  for (const auto& b : bufs) {
    if (auto r = write(offset, b); !r) return r;
    offset += b.size();
  }
  return {};
}

}  // namespace vmmd::storage
