#include "vmm/boot/boot.h"

#include <cstring>

#include "base/hex.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/pvh.h"
#include "vmm/machine/layout.h"

namespace vmmd::boot {
namespace {

constexpr uint64_t kPageSize = 4096;

Status writeCmdline(GuestMemory& memory, const std::string& cmdline, uint64_t limit) {
  if (cmdline.size() + 1 > limit) {
    return Error("kernel command line is " + std::to_string(cmdline.size()) + " bytes; the kernel accepts at most " +
                 std::to_string(limit - 1));
  }
  return memory.write(layout::kCmdline, {reinterpret_cast<const uint8_t*>(cmdline.c_str()), cmdline.size() + 1});
}

struct InitrdPlacement {
  uint64_t address = 0;
  uint64_t size = 0;
};

// The initrd goes as high as allowed in low RAM, page aligned, above everything the kernel uses.
Result<InitrdPlacement> loadInitrd(GuestMemory& memory, const std::string& path, uint64_t kernel_end, uint64_t max_end) {
  if (path.empty()) return InitrdPlacement{};
  auto file = ImageFile::open(path);
  if (!file) return file.error().withContext("initrd");
  uint64_t top = std::min(memory.ramBelow4G(), max_end);
  uint64_t size = file->size();
  if (size == 0) return Error("initrd " + path + ": file is empty");
  if (size > top || ((top - size) & ~(kPageSize - 1)) < kernel_end) {
    return Error("initrd " + path + " (" + std::to_string(size >> 10) + " KiB) does not fit in guest memory between the kernel's end at " +
                 hex(kernel_end) + " and " + hex(top) + "; give the guest more memory (-m)");
  }
  uint64_t address = (top - size) & ~(kPageSize - 1);
  if (auto st = file->loadInto(memory, address, 0, size); !st) return st.error().withContext("initrd");
  return InitrdPlacement{address, size};
}

Result<BootEntry> loadPvh(GuestMemory& memory, const ImageFile& kernel, const BootRequest& request) {
  auto image = parsePvhElf(kernel);
  if (!image) return image.error();
  for (const auto& segment : image->segments) {
    uint8_t* host = memory.hostAddress(segment.guest_address, segment.memory_size);
    if (!host || segment.guest_address < layout::kBiosAreaEnd) {
      return Error(kernel.path() + ": ELF segment at " + hex(segment.guest_address) + " (" +
                   std::to_string(segment.memory_size) + " bytes) lies outside usable guest RAM (" +
                   std::to_string(memory.ramBytes() >> 20) + " MiB)");
    }
    if (auto st = kernel.loadInto(memory, segment.guest_address, segment.file_offset, segment.file_size); !st) return st.error();
    std::memset(host + segment.file_size, 0, segment.memory_size - segment.file_size);
  }
  if (auto st = writeCmdline(memory, request.cmdline, layout::kCmdlineMax); !st) return st.error();
  auto initrd = loadInitrd(memory, request.initrd_path, image->highest_address, memory.ramBelow4G());
  if (!initrd) return initrd.error();

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
  info.rsdp_paddr = request.rsdp_address;
  info.memmap_paddr = layout::kPvhMemmap;
  info.memmap_entries = static_cast<uint32_t>(memmap.size());
  if (initrd->size) {
    HvmModlistEntry module{initrd->address, initrd->size, 0, 0};
    if (auto st = memory.writeObject(layout::kPvhModlist, module); !st) return st.error();
    info.nr_modules = 1;
    info.modlist_paddr = layout::kPvhModlist;
  }
  if (auto st = memory.writeObject(layout::kPvhStartInfo, info); !st) return st.error();
  return BootEntry{BootEntry::Mode::Protected32, image->entry, layout::kPvhStartInfo, "pvh"};
}

template <typename T>
void put(std::array<uint8_t, bp::kSize>& page, uint32_t offset, T value) {
  std::memcpy(&page[offset], &value, sizeof(T));
}

Result<BootEntry> loadBzImage(GuestMemory& memory, const ImageFile& kernel, const BootRequest& request) {
  auto header = parseSetupHeader(kernel);
  if (!header) return header.error();
  uint64_t payload = kernel.size() - header->setup_bytes;
  if (auto st = kernel.loadInto(memory, layout::kKernelLoad, header->setup_bytes, payload); !st) {
    return st.error().withContext("load kernel");
  }
  uint64_t cmdline_limit = header->cmdline_size ? uint64_t{header->cmdline_size} + 1 : 256;
  if (auto st = writeCmdline(memory, request.cmdline, std::min(cmdline_limit, layout::kCmdlineMax)); !st) return st.error();

  // The kernel decompresses in place and needs init_size bytes from its (aligned) load address.
  uint64_t kernel_end = layout::kKernelLoad + std::max<uint64_t>(payload, header->init_size);
  uint64_t initrd_max = header->initrd_addr_max ? uint64_t{header->initrd_addr_max} + 1 : 0x38000000;
  auto initrd = loadInitrd(memory, request.initrd_path, kernel_end, initrd_max);
  if (!initrd) return initrd.error();

  // boot_params: zeroed, the setup header copied from the file, then the loader's fields.
  std::array<uint8_t, bp::kSize> params{};
  uint32_t header_end = 0x202 + header->first_page[0x201];
  std::memcpy(&params[bp::kSetupSects], &header->first_page[bp::kSetupSects], header_end - bp::kSetupSects);
  put<uint16_t>(params, bp::kVidMode, 0xFFFF);
  params[bp::kTypeOfLoader] = 0xFF;
  params[bp::kLoadFlags] |= bp::kCanUseHeap;
  put<uint16_t>(params, bp::kHeapEndPtr, 0xFE00);
  put<uint32_t>(params, bp::kCmdLinePtr, static_cast<uint32_t>(layout::kCmdline));
  put<uint32_t>(params, bp::kExtCmdLinePtr, 0);
  put<uint32_t>(params, bp::kRamdiskImage, static_cast<uint32_t>(initrd->address));
  put<uint32_t>(params, bp::kRamdiskSize, static_cast<uint32_t>(initrd->size));
  put<uint32_t>(params, bp::kExtRamdiskImage, static_cast<uint32_t>(initrd->address >> 32));
  put<uint32_t>(params, bp::kExtRamdiskSize, static_cast<uint32_t>(initrd->size >> 32));
  if (header->version >= 0x020e) put<uint64_t>(params, bp::kAcpiRsdpAddr, request.rsdp_address);

  auto map = memory.memoryMap();
  if (map.size() > bp::kE820MaxEntries) return Error("memory map has too many entries");
  params[bp::kE820Entries] = static_cast<uint8_t>(map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    uint32_t at = bp::kE820Table + static_cast<uint32_t>(i) * 20;
    put<uint64_t>(params, at, map[i].address);
    put<uint64_t>(params, at + 8, map[i].size);
    put<uint32_t>(params, at + 16, static_cast<uint32_t>(map[i].type));
  }
  if (auto st = memory.write(layout::kBootParams, params); !st) return st.error();
  // The 64-bit entry point sits 0x200 bytes into the protected-mode code.
  return BootEntry{BootEntry::Mode::Long64, layout::kKernelLoad + 0x200, layout::kBootParams, "bzimage"};
}

}  // namespace

Result<BootEntry> loadKernel(GuestMemory& memory, const BootRequest& request) {
  auto kernel = ImageFile::open(request.kernel_path);
  if (!kernel) return kernel.error().withContext("kernel");
  if (looksLikeElf(*kernel)) return loadPvh(memory, *kernel, request);
  if (looksLikeBzImage(*kernel)) return loadBzImage(memory, *kernel, request);
  return Error("kernel " + request.kernel_path + ": neither a bzImage (no HdrS setup header) nor an ELF with a PVH entry note");
}

}  // namespace vmmd::boot
