// Booting through firmware (SeaBIOS, as QEMU's pc machine does) instead of loading a kernel: the
// BIOS image, and the contents of the fw_cfg files the firmware reads, in QEMU's formats so the
// unchanged firmware file works.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/mapping.h"
#include "base/result.h"
#include "vmm/boot/image_file.h"
#include "vmm/acpi/tables.h"
#include "vmm/platform/guest_memory.h"

namespace vmmd::boot {

// Debian's SeaBIOS (package seabios), the image QEMU's pc machine loads.
inline constexpr const char* kDefaultBios = "/usr/share/seabios/bios-256k.bin";

// A BIOS image: mapped read-only at the top of 4 GiB, and copied below 1 MiB as RAM the firmware
// may write. A PC's chipset aliases the image's last 128 KiB at 0xE0000 and SeaBIOS then copies
// its code to RAM there and below through the host bridge's PAM registers ("shadowing"). This
// host bridge has no PAM registers (SeaBIOS says "Unable to unlock ram - bridge not found" and
// goes on), so the machine starts in the state shadowing leaves: the image's bytes at
// 0x100000 - size .. 0xFFFFF, low address L holding the ROM's byte at L + 0xFFF00000.
class FirmwareImage {
 public:
  static constexpr uint64_t kMaxSize = 256 * 1024;      // up to the KVM TSS pages below it
  static constexpr uint64_t kLowCopyEnd = 0x100000;  // the image ends at 1 MiB (and at 4 GiB)

  static Result<FirmwareImage> open(const std::string& path, const FileOpener& files = plainFiles());

  const std::string& path() const { return path_; }
  // Where the image sits in guest-physical memory (its end is 4 GiB) and its bytes, a private
  // page-aligned copy for the KVM memory slot.
  uint64_t guestAddress() const;
  uint8_t* data() const { return mapping_.data(); }
  uint64_t size() const { return size_; }
  // Copies the image below 1 MiB: at power-on and at every reset, so a reboot runs the
  // firmware's cold boot path again.
  Status loadLowCopy(GuestMemory& memory) const;

 private:
  FirmwareImage(std::string path, Mapping mapping, uint64_t size) : path_(std::move(path)), mapping_(std::move(mapping)), size_(size) {}
  std::string path_;
  Mapping mapping_;
  uint64_t size_;
};

// QEMU's table-loader ("etc/table-loader"): the commands that make the firmware place the ACPI
// tables (ALLOCATE), patch the addresses between them (ADD_POINTER) and fix their checksums
// (ADD_CHECKSUM). The RSDP goes to the F segment where operating systems scan for it.
struct AcpiFirmwareFiles {
  std::vector<uint8_t> loader;  // etc/table-loader
  std::vector<uint8_t> tables;  // etc/acpi/tables
  std::vector<uint8_t> rsdp;    // etc/acpi/rsdp
};
inline constexpr const char* kAcpiTablesFile = "etc/acpi/tables";
inline constexpr const char* kAcpiRsdpFile = "etc/acpi/rsdp";
Result<AcpiFirmwareFiles> buildAcpiFirmwareFiles(const acpi::AcpiTables& tables, uint64_t base_address);

// etc/e820: packed {u64 address, u64 length, u32 type} little-endian entries: RAM, and the pages
// KVM needs below the BIOS (reserved). The firmware adds its own reservations.
std::vector<uint8_t> buildE820File(const GuestMemory& memory);

// A boot device: its PCI slot and its place in the boot order (lower first).
struct BootDevice {
  int slot;
  int bootindex;
};
// "bootorder": one OpenFirmware device path per line, as QEMU writes them for a disk on the
// i440fx host bus ("/pci@i0cf8/scsi@4/disk@0,0"), lowest bootindex first.
std::vector<uint8_t> buildBootOrderFile(std::vector<BootDevice> devices);

// Little-endian integer items (etc/boot-fail-wait, etc/show-boot-menu, CPU counts...).
std::vector<uint8_t> littleEndian(uint64_t value, size_t size);

}  // namespace vmmd::boot
