// Scatter/gather lists for the block layer: the buffers of one request that covers one
// contiguous disk range (a guest's virtio-blk request is a list of guest pages).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace vmmd::storage {

using ReadVector = std::span<const std::span<uint8_t>>;
using WriteVector = std::span<const std::span<const uint8_t>>;

template <class Byte>
uint64_t totalBytes(std::span<const std::span<Byte>> parts) {
  uint64_t n = 0;
  for (const auto& p : parts) n += p.size();
  return n;
}

// A buffer list addressed by byte offset, for code that walks a request in pieces of its own
// (qcow2 cluster runs) instead of buffer by buffer.
template <class Byte>
class BufferList {
 public:
  explicit BufferList(std::span<const std::span<Byte>> parts) : parts_(parts), size_(totalBytes(parts)) {}
  uint64_t size() const { return size_; }

  // The buffers covering [offset, offset + length), the first and last trimmed to it.
  std::vector<std::span<Byte>> slice(uint64_t offset, uint64_t length) const {
    std::vector<std::span<Byte>> out;
    uint64_t start = 0;
    for (const auto& p : parts_) {
      if (length == 0) break;
      const uint64_t end = start + p.size();
      if (end > offset) {
        const uint64_t skip = offset > start ? offset - start : 0;
        const uint64_t take = std::min<uint64_t>(p.size() - skip, length);
        out.push_back(p.subspan(skip, take));
        offset += take;
        length -= take;
      }
      start = end;
    }
    return out;
  }

  // Copies [offset, offset + dst.size()) into dst.
  void copyTo(uint64_t offset, std::span<uint8_t> dst) const {
    uint64_t done = 0;
    for (const auto& part : slice(offset, dst.size())) {
      std::memcpy(dst.data() + done, part.data(), part.size());
      done += part.size();
    }
  }

 private:
  std::span<const std::span<Byte>> parts_;
  uint64_t size_;
};

using WriteSource = BufferList<const uint8_t>;
using ReadTarget = BufferList<uint8_t>;

}  // namespace vmmd::storage
