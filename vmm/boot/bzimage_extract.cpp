#include "vmm/boot/bzimage_extract.h"

#include <sys/random.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "base/hex.h"
#include "vmm/boot/vmlinux_layout.h"

namespace vmmd::boot {

std::optional<KernelPayload> findKernelPayload(const ImageFile& file, const SetupHeader& header) {
  // payload_offset/length came with protocol 2.08, pref_address with 2.10; relocatable kernels
  // with an alignment the page tables can honour only.
  if (header.version < 0x020a || !header.relocatable || header.payload_length < 16 || header.init_size == 0) return std::nullopt;
  uint64_t alignment = header.kernel_alignment;
  if (alignment < 4096 || (alignment & (alignment - 1)) != 0 || header.pref_address % alignment != 0) return std::nullopt;
  uint64_t offset = uint64_t{header.setup_bytes} + header.payload_offset;
  if (offset > file.size() || header.payload_length > file.size() - offset) return std::nullopt;
  uint8_t head[8];
  if (!file.readAt(offset, head).ok()) return std::nullopt;
  auto kind = detectCompression(head);
  if (!kind) return std::nullopt;
  return KernelPayload{*kind, offset, header.payload_length, header.pref_address, alignment, header.init_size};
}

bool kernelExtractionEnabled() {
  const char* setting = std::getenv("VMM_KERNEL_EXTRACT");
  return !setting || std::strcmp(setting, "0") != 0;
}

uint64_t systemRandomBelow(uint64_t bound) {
  uint64_t value = 0;
  // getrandom(2) of 8 bytes does not fail short once the pool is ready; if it fails anyway, 0:
  // the kernel stays at its first slot, as with nokaslr.
  while (::getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
    if (errno != EINTR) return 0;
  }
  return value % bound;
}

namespace {

double millisecondsSince(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

Result<ExtractedKernel> extractKernel(const ImageFile& file, const KernelPayload& payload, GuestMemory& memory,
                                      uint64_t physical, bool randomize, const RandomBelow& random_below) {
  if (!memory.hostAddress(physical, payload.room) || physical % payload.alignment != 0) {
    return Error("no room for the kernel (" + std::to_string(payload.room) + " bytes) at " + hex(physical));
  }
  auto started = std::chrono::steady_clock::now();
  auto compressed = file.read(payload.file_offset, payload.length);
  if (!compressed) return compressed.error();
  double read_ms = millisecondsSince(started);
  // Decompressed one alignment unit low, where a vmlinux's first segments need no move
  // (vmlinux_layout.h); a kernel laid out otherwise is decompressed again at its load address.
  uint64_t lead = physical >= payload.alignment + (1u << 20) ? payload.alignment : 0;
  for (;;) {
    std::span<uint8_t> region{memory.hostAddress(physical - lead, lead + payload.room), lead + payload.room};
    if (!region.data()) return Error("no room for the kernel below " + hex(physical));
    auto decompress_started = std::chrono::steady_clock::now();
    auto size = decompress(payload.kind, compressed->bytes(), region, file.cpus());
    if (!size) return size.error().withContext(file.path());
    double decompress_ms = millisecondsSince(decompress_started);
    auto layout_started = std::chrono::steady_clock::now();
    auto layout = planVmlinux(region.first(*size), lead, payload.room, payload.link_base);
    if (!layout && lead != 0) {
      lead = 0;
      continue;
    }
    if (!layout) return layout.error().withContext(file.path());
    uint64_t delta = 0;
    bool randomized = randomize && layout->relocatable;
    if (randomized) {
      // Virtual slots: the image may start anywhere from its link address to KERNEL_IMAGE_SIZE
      // less its size, in steps of its alignment.
      uint64_t top = kKernelImageSize > payload.link_base + payload.room ? kKernelImageSize - payload.link_base - payload.room : 0;
      delta = random_below(top / payload.alignment + 1) * payload.alignment;
    }
    buildVmlinux(*layout, region, delta);
    return ExtractedKernel{physical, physical + layout->entry, delta, randomized, read_ms, decompress_ms, millisecondsSince(layout_started)};
  }
}

}  // namespace vmmd::boot
