// The ACPI tables a direct-booted guest finds through its RSDP: RSDP, XSDT, FADT (+FACS), DSDT
// and MADT, so that stock kernels and the probe guest power off (S5), reset and see every CPU.
// Two kinds of machine: classic ACPI with a fixed-feature power button, the register layout of
// QEMU's q35 (PM1 event block at 0x600); or hardware-reduced ACPI as QEMU's microvm has it (no
// PM1 blocks, PM timer or SCI: sleep and reset registers and a Generic Event Device, in MMIO).
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"

namespace vmmd::acpi {

// A virtio-mmio transport announced in the DSDT (_HID LNRO0005, as QEMU's microvm does).
struct MmioDevice {
  uint64_t base = 0;
  uint32_t size = 0;
  uint32_t gsi = 0;
  uint32_t index = 0;  // the transport's number: its _UID and its name VRnn
};

struct AcpiLayout {
  uint32_t vcpus = 1;
  uint64_t base_address = 0;      // where the blob lives in guest memory; the RSDP is first
  uint16_t pm1_event_port = 0x600;  // status (2 bytes) + enable (2 bytes)
  uint16_t pm1_control_port = 0x604;
  uint16_t pm_timer_port = 0x608;
  uint16_t reset_port = 0xCF9;
  uint8_t reset_value = 0x06;
  uint8_t sci_irq = 9;
  uint8_t s5_sleep_type = 5;
  uint8_t serial_irq = 4;
  uint64_t ioapic_address = 0xFEC00000;
  uint64_t lapic_address = 0xFEE00000;
  bool serial = true;               // COM1 (PNP0501)
  bool rtc = true;                  // the CMOS RTC (PNP0B00); without it the FADT says it is absent
  std::vector<MmioDevice> virtio_mmio;
  bool pci = false;                 // a PCI host bridge (PNP0A03) on bus 0
  // Hardware-reduced: the PM1, PM timer, SCI and reset_port fields above are unused; the FADT
  // points at the sleep control (+0), sleep status (+1) and reset (+2) byte registers at
  // ged_registers, and the DSDT declares the GED (event selector at ged_address, a 32-bit
  // register; bit 1: power button) on an edge-triggered ged_gsi, and the power button device.
  bool hardware_reduced = false;
  uint64_t ged_address = 0xFEA00000;
  uint64_t ged_registers = 0xFEA00200;
  uint32_t ged_gsi = 9;
  uint32_t ged_power_down_event = 1u << 1;
  uint8_t ged_reset_value = 0x42;
  uint32_t pci_mmio_start = 0xC0000000;
  uint32_t pci_mmio_end = 0xFEBFFFFF;
};

struct AcpiTables {
  uint64_t rsdp_address;
  std::vector<uint8_t> blob;  // to be copied to base_address; the RSDP is its first 36 bytes

  // What firmware that places the tables itself (QEMU's table loader) must patch: the fields
  // holding the address of another table (base_address + that table's offset in the blob), and
  // the tables whose checksum covers such a field.
  struct Pointer {
    uint32_t offset;  // of the field in the blob
    uint8_t size;     // 4 or 8 bytes
  };
  struct Extent {
    uint32_t offset;
    uint32_t length;
  };
  std::vector<Pointer> pointers;
  std::vector<Extent> checksummed;  // every table with a header checksum (not the RSDP, not FACS)
};

constexpr size_t kRsdpLength = 36;
constexpr size_t kRsdpChecksumOffset = 8, kRsdpChecksummedLength = 20, kRsdpExtendedChecksumOffset = 32;
constexpr size_t kRsdpXsdtOffset = 24;
constexpr size_t kTableChecksumOffset = 9;

Result<AcpiTables> buildAcpiTables(const AcpiLayout& layout);

// Sum of bytes mod 256; a valid table sums to 0.
uint8_t checksum(const uint8_t* data, size_t length);

}  // namespace vmmd::acpi
