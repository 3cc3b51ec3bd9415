// Where QEMU 7.2's microvm machine puts its virtio-mmio transports (hw/i386/microvm.c with
// ioapic2=off): transport i at 0xfeb00000 + 512 * i, on GSI 16 + i when ACPI describes the
// interrupts (IOAPIC pins above the ISA range, no sharing), 5 + i without ACPI (the PIC's
// reach). -device entries take the transports in command-line order, or the one bus=
// virtio-mmio-bus.N names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/config/machine_config.h"

namespace vmmd::microvm {

constexpr uint64_t kVirtioMmioBase = 0xFEB00000;
constexpr uint32_t kTransportCount = 8;
constexpr uint32_t kGsiBaseAcpi = 16, kGsiBaseNoAcpi = 5;
// The hardware-reduced ACPI window (Generic Event Device, sleep and reset registers: AcpiGed) at
// QEMU's microvm address, and the GED's interrupt (ISA IRQ 9, free without an SCI).
constexpr uint64_t kGedBase = 0xFEA00000;
constexpr uint32_t kGedGsi = 9;

struct Transport {
  uint32_t index = 0;
  uint64_t base = 0;
  uint32_t gsi = 0;
};

Transport transport(uint32_t index, bool acpi);

// One transport per -device that is a virtio function (not the serial ports), in config order.
Result<std::vector<Transport>> placeDevices(const config::MachineConfig& config);

// What QEMU's microvm appends to the kernel command line without ACPI (auto-kernel-cmdline):
// " virtio_mmio.device=512@0xBASE:GSI" for each transport in use.
std::string kernelCommandLine(const std::vector<Transport>& transports);

}  // namespace vmmd::microvm
