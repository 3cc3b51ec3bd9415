// libFuzzer target: a bzImage's payload as the worker handles it. The first byte picks the
// format; the rest is decompressed into a fixed room, and whatever decompresses is checked and
// laid out as a kernel (in a region with guard bytes past it): errors, never a crash, a write
// outside the region, or an allocation the input sizes.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "vmm/boot/kernel_decompress.h"
#include "vmm/boot/vmlinux_layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmmd::boot;
  if (size < 1) return 0;
  constexpr Compression kKinds[] = {Compression::Gzip, Compression::Xz, Compression::Lzma, Compression::Lz4Legacy,
                                    Compression::Zstd};
  constexpr uint64_t kLead = 0x1000, kRoom = 1u << 20, kGuard = 4096, kLinkBase = 16u << 20;
  std::span<const uint8_t> input(data + 1, size - 1);
  std::vector<uint8_t> region(kLead + kRoom + kGuard, 0xA5);
  std::span<uint8_t> usable(region.data(), kLead + kRoom);
  // Either decompressed (first byte below 0x80) or taken as already decompressed data.
  uint64_t length = 0;
  if (data[0] < 0x80) {
    auto out = decompress(kKinds[data[0] % 5], input, usable);
    if (!out) return 0;
    length = *out;
  } else {
    length = std::min<uint64_t>(input.size(), usable.size());
    std::copy(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(length), usable.begin());
  }
  if (length > usable.size()) std::abort();
  uint64_t lead = (data[0] & 0x40) ? kLead : 0;
  auto layout = planVmlinux(usable.first(length), lead, kRoom, kLinkBase);
  if (!layout) return 0;
  buildVmlinux(*layout, {region.data(), lead + kRoom}, (data[0] & 0x20) ? (6u << 20) : 0);
  for (uint64_t i = kLead + kRoom; i < region.size(); ++i) {
    if (region[i] != 0xA5) {
      std::fprintf(stderr, "write past the region at +%llu\n", static_cast<unsigned long long>(i));
      std::abort();
    }
  }
  return 0;
}
