#include "vmm/boot/firmware.h"

#include <algorithm>
#include <cstring>

#include "vmm/boot/image_file.h"
#include "vmm/platform/layout.h"

namespace vmmd::boot {
namespace {

// Table-loader commands: 128-byte little-endian entries (QEMU's BiosLinkerLoaderEntry).
constexpr size_t kLoaderEntrySize = 128, kLoaderNameSize = 56;
constexpr uint32_t kAllocate = 1, kAddPointer = 2, kAddChecksum = 3;
constexpr uint8_t kZoneHigh = 1, kZoneFseg = 2;

class LoaderScript {
 public:
  void allocate(const char* file, uint32_t alignment, uint8_t zone) {
    uint8_t* entry = add(kAllocate);
    name(entry + 4, file);
    put32(entry + 4 + kLoaderNameSize, alignment);
    entry[4 + kLoaderNameSize + 4] = zone;
  }
  void addPointer(const char* dest, const char* source, uint32_t offset, uint8_t size) {
    uint8_t* entry = add(kAddPointer);
    name(entry + 4, dest);
    name(entry + 4 + kLoaderNameSize, source);
    put32(entry + 4 + 2 * kLoaderNameSize, offset);
    entry[4 + 2 * kLoaderNameSize + 4] = size;
  }
  void addChecksum(const char* file, uint32_t offset, uint32_t start, uint32_t length) {
    uint8_t* entry = add(kAddChecksum);
    name(entry + 4, file);
    put32(entry + 4 + kLoaderNameSize, offset);
    put32(entry + 4 + kLoaderNameSize + 4, start);
    put32(entry + 4 + kLoaderNameSize + 8, length);
  }
  std::vector<uint8_t> take() { return std::move(bytes_); }

 private:
  uint8_t* add(uint32_t command) {
    bytes_.resize(bytes_.size() + kLoaderEntrySize, 0);
    uint8_t* entry = bytes_.data() + bytes_.size() - kLoaderEntrySize;
    put32(entry, command);
    return entry;
  }
  static void put32(uint8_t* at, uint32_t value) { std::memcpy(at, &value, 4); }
  static void name(uint8_t* at, const char* file) { std::memcpy(at, file, std::min(std::strlen(file), kLoaderNameSize - 1)); }
  std::vector<uint8_t> bytes_;
};

}  // namespace

Result<FirmwareImage> FirmwareImage::open(const std::string& path, const FileOpener& files) {
  auto file = ImageFile::open(path, files);
  if (!file) return file.error().withContext("-bios");
  uint64_t size = file->size();
  if (size == 0 || size % 0x10000 != 0 || size > kMaxSize) {
    return Error("-bios " + path + ": a BIOS image is a multiple of 64 KiB and at most 256 KiB (this one has " +
                 std::to_string(size) + " bytes)");
  }
  auto mapping = Mapping::anonymous(size);
  if (!mapping) return mapping.error().withContext("-bios " + path);
  if (auto st = file->readAt(0, {mapping->data(), size}); !st) return st.error();
  return FirmwareImage(path, std::move(*mapping), size);
}

uint64_t FirmwareImage::guestAddress() const { return layout::kFourGiB - size_; }

Status FirmwareImage::loadLowCopy(GuestMemory& memory) const {
  return memory.write(kLowCopyEnd - size_, {mapping_.data(), size_});
}

Result<AcpiFirmwareFiles> buildAcpiFirmwareFiles(const acpi::AcpiTables& tables, uint64_t base_address) {
  const auto& blob = tables.blob;
  if (blob.size() < acpi::kRsdpLength || tables.rsdp_address != base_address) return Error("ACPI: the RSDP must lead the blob");
  AcpiFirmwareFiles files;
  files.rsdp.assign(blob.begin(), blob.begin() + acpi::kRsdpLength);
  files.tables = blob;
  std::fill(files.tables.begin(), files.tables.begin() + acpi::kRsdpLength, 0);  // one RSDP only: the F segment's

  LoaderScript script;
  script.allocate(kAcpiRsdpFile, 16, kZoneFseg);
  script.allocate(kAcpiTablesFile, 64, kZoneHigh);
  // Every address field becomes an offset into etc/acpi/tables; the firmware adds where it put it.
  for (const auto& pointer : tables.pointers) {
    bool in_rsdp = pointer.offset < acpi::kRsdpLength;
    auto& file = in_rsdp ? files.rsdp : files.tables;
    uint64_t value = 0;
    if (pointer.offset + pointer.size > file.size() || pointer.size > sizeof(value)) return Error("ACPI: pointer outside its table");
    std::memcpy(&value, file.data() + pointer.offset, pointer.size);
    value -= base_address;
    std::memcpy(file.data() + pointer.offset, &value, pointer.size);
    script.addPointer(in_rsdp ? kAcpiRsdpFile : kAcpiTablesFile, kAcpiTablesFile, pointer.offset, pointer.size);
  }
  for (const auto& table : tables.checksummed) {
    script.addChecksum(kAcpiTablesFile, table.offset + static_cast<uint32_t>(acpi::kTableChecksumOffset), table.offset, table.length);
  }
  script.addChecksum(kAcpiRsdpFile, acpi::kRsdpChecksumOffset, 0, acpi::kRsdpChecksummedLength);
  script.addChecksum(kAcpiRsdpFile, acpi::kRsdpExtendedChecksumOffset, 0, acpi::kRsdpLength);
  files.loader = script.take();
  return files;
}

std::vector<uint8_t> littleEndian(uint64_t value, size_t size) {
  std::vector<uint8_t> bytes(size);
  for (auto& byte : bytes) {
    byte = static_cast<uint8_t>(value);
    value >>= 8;
  }
  return bytes;
}

std::vector<uint8_t> buildE820File(const GuestMemory& memory) {
  std::vector<uint8_t> file;
  auto add = [&](uint64_t address, uint64_t length, layout::E820Type type) {
    for (auto bytes : {littleEndian(address, 8), littleEndian(length, 8), littleEndian(static_cast<uint32_t>(type), 4)}) {
      file.insert(file.end(), bytes.begin(), bytes.end());
    }
  };
  for (const auto& region : memory.regions()) add(region.guest_address, region.size, layout::E820Type::Ram);
  // KVM's identity-map page and TSS (Intel real-mode emulation) sit just below the BIOS.
  add(layout::kIdentityMap, layout::kFourGiB - FirmwareImage::kMaxSize - layout::kIdentityMap, layout::E820Type::Reserved);
  return file;
}

std::vector<uint8_t> buildBootOrderFile(std::vector<BootDevice> devices) {
  std::stable_sort(devices.begin(), devices.end(), [](const BootDevice& a, const BootDevice& b) { return a.bootindex < b.bootindex; });
  std::string text;
  for (const auto& device : devices) {
    char line[64];
    std::snprintf(line, sizeof(line), "/pci@i0cf8/scsi@%x/disk@0,0\n", device.slot);
    text += line;
  }
  return {text.begin(), text.end()};
}

}  // namespace vmmd::boot
