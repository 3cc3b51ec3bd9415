#include "vmm/boot/boot.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/hex.h"
#include "base/log.h"
#include "vmm/platform/layout.h"

namespace vmmd::boot {
namespace {

constexpr uint64_t kPageSize = 4096;

Status checkCmdline(const std::string& cmdline, uint64_t limit) {
  if (cmdline.size() + 1 > limit) {
    return Error("kernel command line is " + std::to_string(cmdline.size()) + " bytes; the kernel accepts at most " +
                 std::to_string(limit - 1));
  }
  return {};
}

std::string fixedMs(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f ms", ms);
  return text;
}

// Whether `word` appears in the command line as a whole, space-separated word.
bool hasWord(const std::string& cmdline, std::string_view word) {
  for (size_t at = 0; at <= cmdline.size();) {
    size_t end = cmdline.find(' ', at);
    if (end == std::string::npos) end = cmdline.size();
    if (std::string_view(cmdline).substr(at, end - at) == word) return true;
    at = end + 1;
  }
  return false;
}

template <typename T>
void put(std::array<uint8_t, bp::kSize>& page, uint32_t offset, T value) {
  std::memcpy(&page[offset], &value, sizeof(T));
}

}  // namespace

Result<KernelImage> KernelImage::open(const GuestMemory& memory, const BootRequest& request) {
  auto kernel = ImageFile::open(request.kernel_path, *request.files);
  if (!kernel) return kernel.error().withContext("kernel");
  KernelImage image(request, std::move(*kernel));
  Status planned = looksLikeElf(image.kernel_)        ? image.planPvh(memory)
                   : looksLikeBzImage(image.kernel_) ? image.planBzImage(memory)
                                                      : Error("kernel " + request.kernel_path +
                                                              ": neither a bzImage (no HdrS setup header) nor an ELF "
                                                              "with a PVH entry note");
  if (!planned) return planned.error();
  return image;
}

Status KernelImage::planPvh(const GuestMemory& memory) {
  auto image = parsePvhElf(kernel_);
  if (!image) return image.error();
  for (const auto& segment : image->segments) {
    if (!memory.hostAddress(segment.guest_address, segment.memory_size) || segment.guest_address < layout::kBiosAreaEnd) {
      return Error(kernel_.path() + ": ELF segment at " + hex(segment.guest_address) + " (" +
                   std::to_string(segment.memory_size) + " bytes) lies outside usable guest RAM (" +
                   std::to_string(memory.ramBytes() >> 20) + " MiB)");
    }
  }
  if (auto st = checkCmdline(request_.cmdline, layout::kCmdlineMax); !st) return st;
  if (auto st = openInitrd(memory, image->highest_address, memory.ramBelow4G()); !st) return st;
  pvh_ = std::move(*image);
  return {};
}

Status KernelImage::planBzImage(const GuestMemory& memory) {
  auto header = parseSetupHeader(kernel_);
  if (!header) return header.error();
  uint64_t payload = kernel_.size() - header->setup_bytes;
  if (auto st = kernel_.checkFits(memory, layout::kKernelLoad, payload); !st) return st.error().withContext("load kernel");
  uint64_t cmdline_limit = header->cmdline_size ? uint64_t{header->cmdline_size} + 1 : 256;
  if (auto st = checkCmdline(request_.cmdline, std::min(cmdline_limit, layout::kCmdlineMax)); !st) return st;
  // The kernel decompresses in place and needs init_size bytes from its (aligned) load address.
  uint64_t kernel_end = layout::kKernelLoad + std::max<uint64_t>(payload, header->init_size);
  uint64_t initrd_max = header->initrd_addr_max ? uint64_t{header->initrd_addr_max} + 1 : 0x38000000;
  // Decompressed by the worker, it runs from its link address (or a random place above it) and
  // the initrd goes above that; where the initrd then does not fit, the guest decompresses.
  if (request_.extract_kernel) payload_ = findKernelPayload(kernel_, *header);
  if (payload_ && !openInitrd(memory, std::max(kernel_end, payload_->link_base + payload_->room), initrd_max).ok()) payload_.reset();
  if (!payload_) {
    if (auto st = openInitrd(memory, kernel_end, initrd_max); !st) return st;
  }
  if (memory.memoryMap().size() > bp::kE820MaxEntries) return Error("memory map has too many entries");
  bzimage_ = std::move(*header);
  return {};
}

// The initrd goes as high as allowed in low RAM, page aligned, above everything the kernel uses.
Status KernelImage::openInitrd(const GuestMemory& memory, uint64_t kernel_end, uint64_t max_end) {
  const std::string& path = request_.initrd_path;
  if (path.empty()) return {};
  auto file = ImageFile::open(path, *request_.files);
  if (!file) return file.error().withContext("initrd");
  uint64_t top = std::min(memory.ramBelow4G(), max_end);
  uint64_t size = file->size();
  if (size == 0) return Error("initrd " + path + ": file is empty");
  if (size > top || ((top - size) & ~(kPageSize - 1)) < kernel_end) {
    return Error("initrd " + path + " (" + std::to_string(size >> 10) + " KiB) does not fit in guest memory between the kernel's end at " +
                 hex(kernel_end) + " and " + hex(top) + "; give the guest more memory (-m)");
  }
  initrd_address_ = (top - size) & ~(kPageSize - 1);
  initrd_.emplace(std::move(*file));
  return {};
}

Result<BootEntry> KernelImage::load(GuestMemory& memory) const {
  if (pvh_) return loadPvh(memory);
  return loadBzImage(memory);
}

Status KernelImage::loadCmdlineAndInitrd(GuestMemory& memory) const {
  const std::string& cmdline = request_.cmdline;
  if (auto st = memory.write(layout::kCmdline, {reinterpret_cast<const uint8_t*>(cmdline.c_str()), cmdline.size() + 1}); !st) {
    return st;
  }
  if (!initrd_) return {};
  if (auto st = initrd_->loadInto(memory, initrd_address_, 0, initrd_->size()); !st) return st.error().withContext("initrd");
  return {};
}

Result<BootEntry> KernelImage::loadPvh(GuestMemory& memory) const {
  for (const auto& segment : pvh_->segments) {
    if (auto st = kernel_.loadInto(memory, segment.guest_address, segment.file_offset, segment.file_size); !st) return st.error();
    std::memset(memory.hostAddress(segment.guest_address, segment.memory_size) + segment.file_size, 0,
                segment.memory_size - segment.file_size);
  }
  if (auto st = loadCmdlineAndInitrd(memory); !st) return st.error();

  auto map = memory.memoryMap();
  std::vector<HvmMemmapEntry> memmap;
  for (const auto& entry : map) memmap.push_back({entry.address, entry.size, static_cast<uint32_t>(entry.type), 0});
  if (auto st = memory.write(layout::kPvhMemmap, {reinterpret_cast<const uint8_t*>(memmap.data()), memmap.size() * sizeof(HvmMemmapEntry)}); !st) {
    return st.error();
  }
  HvmStartInfo info{};
  info.magic = kHvmStartMagic;
  info.version = 1;
  info.cmdline_paddr = layout::kCmdline;
  info.rsdp_paddr = request_.rsdp_address;
  info.memmap_paddr = layout::kPvhMemmap;
  info.memmap_entries = static_cast<uint32_t>(memmap.size());
  if (initrd_) {
    HvmModlistEntry module{initrd_address_, initrd_->size(), 0, 0};
    if (auto st = memory.writeObject(layout::kPvhModlist, module); !st) return st.error();
    info.nr_modules = 1;
    info.modlist_paddr = layout::kPvhModlist;
  }
  if (auto st = memory.writeObject(layout::kPvhStartInfo, info); !st) return st.error();
  return BootEntry{BootEntry::Mode::Protected32, pvh_->entry, layout::kPvhStartInfo, "pvh"};
}

std::optional<ExtractedKernel> KernelImage::extractBzImage(GuestMemory& memory) const {
  if (!payload_) return std::nullopt;
  const KernelPayload& payload = *payload_;
  // Physical slots: from the link address up to where the initrd (or low RAM) begins.
  uint64_t limit = initrd_ ? initrd_address_ : memory.ramBelow4G();
  uint64_t slots = limit >= payload.link_base + payload.room ? (limit - payload.link_base - payload.room) / payload.alignment + 1 : 0;
  if (slots == 0) return std::nullopt;  // open() placed the initrd so that one fits; memory changed size
  bool randomize = !hasWord(request_.cmdline, "nokaslr");
  uint64_t physical = payload.link_base + (randomize ? request_.random_below(slots) : 0) * payload.alignment;
  auto extracted = extractKernel(kernel_, payload, memory, physical, randomize, request_.random_below);
  if (!extracted) {
    log::warning("kernel " + kernel_.path() + ": " + extracted.error().message() + "; the guest decompresses it itself");
    return std::nullopt;
  }
  log::debug("kernel " + kernel_.path() + ": " + compressionName(payload.kind) + " payload decompressed by the worker, at " +
             hex(extracted->physical) + ", virtual offset " + hex(extracted->virtual_delta) +
             (extracted->randomized ? " (KASLR)" : " (nokaslr)") + "; read " + fixedMs(extracted->read_ms) + ", decompressed " +
             fixedMs(extracted->decompress_ms) + " (" + std::to_string(kernel_.cpus()) + " CPUs), laid out " + fixedMs(extracted->layout_ms));
  return *extracted;
}

Result<BootEntry> KernelImage::loadBzImage(GuestMemory& memory) const {
  const SetupHeader& header = *bzimage_;
  std::optional<ExtractedKernel> extracted = extractBzImage(memory);
  uint64_t payload = kernel_.size() - header.setup_bytes;
  if (!extracted) {
    if (auto st = kernel_.loadInto(memory, layout::kKernelLoad, header.setup_bytes, payload); !st) {
      return st.error().withContext("load kernel");
    }
  }
  if (auto st = loadCmdlineAndInitrd(memory); !st) return st.error();
  uint64_t initrd_size = initrd_ ? initrd_->size() : 0;

  // boot_params: zeroed, the setup header copied from the file, then the loader's fields.
  std::array<uint8_t, bp::kSize> params{};
  uint32_t header_end = 0x202 + header.first_page[0x201];
  std::memcpy(&params[bp::kSetupSects], &header.first_page[bp::kSetupSects], header_end - bp::kSetupSects);
  put<uint16_t>(params, bp::kVidMode, 0xFFFF);
  params[bp::kTypeOfLoader] = 0xFF;
  params[bp::kLoadFlags] |= bp::kCanUseHeap;
  put<uint16_t>(params, bp::kHeapEndPtr, 0xFE00);
  put<uint32_t>(params, bp::kCmdLinePtr, static_cast<uint32_t>(layout::kCmdline));
  put<uint32_t>(params, bp::kExtCmdLinePtr, 0);
  put<uint32_t>(params, bp::kRamdiskImage, static_cast<uint32_t>(initrd_address_));
  put<uint32_t>(params, bp::kRamdiskSize, static_cast<uint32_t>(initrd_size));
  put<uint32_t>(params, bp::kExtRamdiskImage, static_cast<uint32_t>(initrd_address_ >> 32));
  put<uint32_t>(params, bp::kExtRamdiskSize, static_cast<uint32_t>(initrd_size >> 32));
  if (header.version >= 0x020e) put<uint64_t>(params, bp::kAcpiRsdpAddr, request_.rsdp_address);

  auto map = memory.memoryMap();
  params[bp::kE820Entries] = static_cast<uint8_t>(map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    uint32_t at = bp::kE820Table + static_cast<uint32_t>(i) * 20;
    put<uint64_t>(params, at, map[i].address);
    put<uint64_t>(params, at + 8, map[i].size);
    put<uint32_t>(params, at + 16, static_cast<uint32_t>(map[i].type));
  }
  if (extracted && extracted->randomized) params[bp::kLoadFlags] |= bp::kKaslrFlag;
  if (auto st = memory.write(layout::kBootParams, params); !st) return st.error();
  // The decompressed kernel's startup_64, or the decompressor's 64-bit entry point, 0x200 bytes
  // into the protected-mode code.
  return BootEntry{BootEntry::Mode::Long64, extracted ? extracted->entry : layout::kKernelLoad + 0x200, layout::kBootParams,
                   "bzimage"};
}

Result<BootEntry> loadKernel(GuestMemory& memory, const BootRequest& request) {
  auto image = KernelImage::open(memory, request);
  if (!image) return image.error();
  return image->load(memory);
}

}  // namespace vmmd::boot
