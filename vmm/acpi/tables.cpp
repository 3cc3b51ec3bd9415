#include "vmm/acpi/tables.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "vmm/acpi/aml.h"

namespace vmmd::acpi {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr char kOemId[] = "VMMD  ";
constexpr char kOemTableId[] = "VMMDMACH";

template <typename T>
void put(Bytes& out, size_t offset, T value) {
  if (out.size() < offset + sizeof(T)) out.resize(offset + sizeof(T));
  std::memcpy(&out[offset], &value, sizeof(T));
}

// The common 36-byte System Description Table header; length and checksum are set by finish().
Bytes header(const char signature[4], uint8_t revision, size_t length) {
  Bytes table(length, 0);
  std::memcpy(&table[0], signature, 4);
  table[8] = revision;
  std::memcpy(&table[10], kOemId, 6);
  std::memcpy(&table[16], kOemTableId, 8);
  put<uint32_t>(table, 24, 1);               // OEM revision
  std::memcpy(&table[28], "VMMD", 4);        // creator id
  put<uint32_t>(table, 32, 1);               // creator revision
  return table;
}

void finish(Bytes& table) {
  put<uint32_t>(table, 4, static_cast<uint32_t>(table.size()));
  table[9] = 0;
  table[9] = static_cast<uint8_t>(-checksum(table.data(), table.size()));
}

// Generic Address Structure for a register in system memory or I/O space.
enum class Space : uint8_t { Memory = 0, Io = 1 };
void putGas(Bytes& out, size_t offset, Space space, uint64_t address, uint8_t bit_width) {
  out[offset] = static_cast<uint8_t>(space);
  out[offset + 1] = bit_width;
  out[offset + 2] = 0;
  out[offset + 3] = bit_width <= 8 ? 1 : bit_width <= 16 ? 2 : 3;  // access size: byte/word/dword
  put<uint64_t>(out, offset + 4, address);
}
void putGas(Bytes& out, size_t offset, uint16_t port, uint8_t bit_width) { putGas(out, offset, Space::Io, port, bit_width); }

// The Generic Event Device (ACPI0013) and the power button it notifies (PNP0C0C): Linux's GED
// driver runs _EVT on every edge of the interrupt; _EVT reads (and so clears) the event selector.
Bytes gedDevices(const AcpiLayout& layout) {
  using namespace aml;
  Bytes ged = name("_HID", string("ACPI0013"));
  for (const auto& part : {name("_UID", integer(0)), name("_CRS", resourceTemplate(edgeInterrupt(layout.ged_gsi))),
                           memoryRegister32("EREG", "ESEL", static_cast<uint32_t>(layout.ged_address)),
                           method("_EVT", 1, notifyIfSet("ESEL", layout.ged_power_down_event, "\\_SB.PWRB", 0x80))}) {
    ged.insert(ged.end(), part.begin(), part.end());
  }
  Bytes button = name("_HID", eisaId("PNP0C0C"));
  Bytes uid = name("_UID", integer(0));
  button.insert(button.end(), uid.begin(), uid.end());
  Bytes out = device("GED", ged);
  Bytes power_button = device("PWRB", button);
  out.insert(out.end(), power_button.begin(), power_button.end());
  return out;
}

Bytes buildDsdt(const AcpiLayout& layout) {
  using namespace aml;
  Bytes body;
  auto add = [&](const Bytes& more) { body.insert(body.end(), more.begin(), more.end()); };
  add(name("\\_S5_", package({integer(layout.s5_sleep_type), integer(layout.s5_sleep_type), integer(0), integer(0)})));
  Bytes com1 = name("_HID", eisaId("PNP0501"));
  for (const auto& part : {name("_UID", integer(1)), name("_CRS", resourceTemplate([&] {
                                                         Bytes r = ioPort(0x3F8, 8);
                                                         Bytes i = irq(layout.serial_irq);
                                                         r.insert(r.end(), i.begin(), i.end());
                                                         return r;
                                                       }()))}) {
    com1.insert(com1.end(), part.begin(), part.end());
  }
  Bytes rtc = name("_HID", eisaId("PNP0B00"));
  for (const auto& part : {name("_CRS", resourceTemplate([&] {
         Bytes r = ioPort(0x70, 2);
         Bytes i = irq(8);
         r.insert(r.end(), i.begin(), i.end());
         return r;
       }()))}) {
    rtc.insert(rtc.end(), part.begin(), part.end());
  }
  Bytes sb;
  auto addDevice = [&](const Bytes& more) { sb.insert(sb.end(), more.begin(), more.end()); };
  if (layout.serial) addDevice(device("COM1", com1));
  for (const MmioDevice& mmio : layout.virtio_mmio) {
    Bytes resources = memory32Fixed(static_cast<uint32_t>(mmio.base), mmio.size);
    Bytes interrupt = levelInterrupt(mmio.gsi);
    resources.insert(resources.end(), interrupt.begin(), interrupt.end());
    Bytes body = name("_HID", string("LNRO0005"));
    for (const auto& part : {name("_UID", integer(mmio.index)), name("_CCA", integer(1)), name("_CRS", resourceTemplate(resources))}) {
      body.insert(body.end(), part.begin(), part.end());
    }
    char device_name[8];
    std::snprintf(device_name, sizeof device_name, "VR%02u", mmio.index % 100);
    addDevice(device(device_name, body));
  }
  if (layout.pci) {
    // Bus 0 behind configuration mechanism #1; all I/O ports but the config ones, and the 32-bit
    // MMIO window below the IOAPIC, go to PCI.
    Bytes resources = wordBusNumber(0, 0);
    Bytes config_ports = ioPort(0xCF8, 8);
    resources.insert(resources.end(), config_ports.begin(), config_ports.end());
    for (const auto& window : {wordIo(0x0000, 0x0CF7), wordIo(0x0D00, 0xFFFF), dwordMemory(layout.pci_mmio_start, layout.pci_mmio_end)}) {
      resources.insert(resources.end(), window.begin(), window.end());
    }
    Bytes pci = name("_HID", eisaId("PNP0A03"));
    for (const auto& part : {name("_UID", integer(0)), name("_SEG", integer(0)), name("_BBN", integer(0)),
                             name("_CRS", resourceTemplate(resources))}) {
      pci.insert(pci.end(), part.begin(), part.end());
    }
    Bytes pci_device = device("PCI0", pci);
    sb.insert(sb.end(), pci_device.begin(), pci_device.end());
  }
  if (layout.rtc) addDevice(device("RTC", rtc));
  if (layout.hardware_reduced) addDevice(gedDevices(layout));
  add(scope("\\_SB", sb));

  Bytes table = header("DSDT", 2, 36);
  table.insert(table.end(), body.begin(), body.end());
  finish(table);
  return table;
}

Bytes buildMadt(const AcpiLayout& layout) {
  Bytes table = header("APIC", 4, 44);
  put<uint32_t>(table, 36, static_cast<uint32_t>(layout.lapic_address));
  put<uint32_t>(table, 40, 1);  // PCAT_COMPAT: dual 8259s present
  auto append = [&](std::initializer_list<uint8_t> bytes) { table.insert(table.end(), bytes); };
  for (uint32_t cpu = 0; cpu < layout.vcpus; ++cpu) {
    uint8_t id = static_cast<uint8_t>(cpu);
    append({0, 8, id, id, 1, 0, 0, 0});  // Processor Local APIC, enabled
  }
  uint32_t ioapic = static_cast<uint32_t>(layout.ioapic_address);
  append({1, 12, 0, 0, static_cast<uint8_t>(ioapic), static_cast<uint8_t>(ioapic >> 8), static_cast<uint8_t>(ioapic >> 16),
          static_cast<uint8_t>(ioapic >> 24), 0, 0, 0, 0});
  append({2, 10, 0, 0, 2, 0, 0, 0, 0, 0});  // ISA IRQ0 (PIT) -> GSI 2, bus defaults
  // SCI: level triggered, active high, as the FADT's SCI_INT must be. Hardware-reduced: none.
  if (!layout.hardware_reduced) append({2, 10, 0, layout.sci_irq, layout.sci_irq, 0, 0, 0, 0x0D, 0});
  append({4, 6, 0xFF, 0, 0, 1});  // LINT1 of every processor is NMI
  finish(table);
  return table;
}

Bytes buildFacs() {
  Bytes facs(64, 0);
  std::memcpy(&facs[0], "FACS", 4);
  put<uint32_t>(facs, 4, 64);
  facs[32] = 2;  // version
  return facs;
}

// FADT fields holding table addresses.
constexpr size_t kFadtFirmwareCtrl = 36, kFadtDsdt = 40, kFadtXDsdt = 140;

Bytes buildFadt(const AcpiLayout& layout, uint64_t facs, uint64_t dsdt) {
  Bytes t = header("FACP", 6, 276);
  put<uint32_t>(t, kFadtFirmwareCtrl, static_cast<uint32_t>(facs));
  put<uint32_t>(t, kFadtDsdt, static_cast<uint32_t>(dsdt));
  const bool classic = !layout.hardware_reduced;
  if (classic) {
    put<uint16_t>(t, 46, layout.sci_irq);
    // SMI_CMD = 0: the hardware is always in ACPI mode (SCI_EN reads as set).
    put<uint32_t>(t, 56, layout.pm1_event_port);
    put<uint32_t>(t, 64, layout.pm1_control_port);
    put<uint32_t>(t, 76, layout.pm_timer_port);
    t[88] = 4;  // PM1_EVT_LEN
    t[89] = 2;  // PM1_CNT_LEN
    t[91] = 4;  // PM_TMR_LEN
  }
  put<uint16_t>(t, 96, 0x0FFF);   // no C2
  put<uint16_t>(t, 98, 0x0FFF);   // no C3
  t[108] = layout.rtc ? 0x32 : 0;  // CMOS century register
  // IAPC_BOOT_ARCH: VGA not present, no 8042; without an RTC, "CMOS RTC not present" (the
  // guest then does not probe one).
  put<uint16_t>(t, 109, static_cast<uint16_t>(1u << 2 | (layout.rtc ? 0 : 1u << 5)));
  constexpr uint32_t kWbinvd = 1u << 0, kProcC1 = 1u << 2, kPowerButtonDevice = 1u << 4, kSleepButtonAbsent = 1u << 5,
                     kResetRegSup = 1u << 10, kHardwareReduced = 1u << 20;
  uint32_t flags = kWbinvd | kProcC1 | kSleepButtonAbsent | kResetRegSup;
  // Hardware-reduced: the power button is the GED's PNP0C0C device, not a fixed feature.
  if (!classic) flags |= kHardwareReduced | kPowerButtonDevice;
  put<uint32_t>(t, 112, flags);
  if (classic) {
    putGas(t, 116, layout.reset_port, 8);
    t[128] = layout.reset_value;
  } else {
    putGas(t, 116, Space::Memory, layout.ged_registers + 2, 8);
    t[128] = layout.ged_reset_value;
  }
  put<uint64_t>(t, kFadtXDsdt, dsdt);
  if (classic) {
    putGas(t, 148, layout.pm1_event_port, 32);
    putGas(t, 172, layout.pm1_control_port, 16);
    putGas(t, 208, layout.pm_timer_port, 32);
  } else {
    putGas(t, 244, Space::Memory, layout.ged_registers, 8);      // SLEEP_CONTROL_REG
    putGas(t, 256, Space::Memory, layout.ged_registers + 1, 8);  // SLEEP_STATUS_REG
  }
  std::memcpy(&t[268], "VMMDVMMD", 8);  // hypervisor vendor identity
  finish(t);
  return t;
}

size_t alignUp(size_t value, size_t alignment) { return (value + alignment - 1) & ~(alignment - 1); }

}  // namespace

uint8_t checksum(const uint8_t* data, size_t length) {
  uint8_t sum = 0;
  for (size_t i = 0; i < length; ++i) sum = static_cast<uint8_t>(sum + data[i]);
  return sum;
}

Result<AcpiTables> buildAcpiTables(const AcpiLayout& layout) {
  if (layout.vcpus == 0 || layout.vcpus > 254) return Error("ACPI: unsupported CPU count " + std::to_string(layout.vcpus));
  Bytes blob;
  AcpiTables tables;
  auto place = [&](const Bytes& table, size_t alignment, bool checksummed = true) {
    size_t offset = alignUp(blob.size(), alignment);
    blob.resize(offset);
    blob.insert(blob.end(), table.begin(), table.end());
    if (checksummed) tables.checksummed.push_back({static_cast<uint32_t>(offset), static_cast<uint32_t>(table.size())});
    return offset;
  };
  auto pointer = [&](size_t table_offset, size_t field, uint8_t size) {
    tables.pointers.push_back({static_cast<uint32_t>(table_offset + field), size});
  };
  blob.resize(kRsdpLength);  // RSDP first, filled in last
  uint64_t facs = layout.base_address + place(buildFacs(), 64, false);
  uint64_t dsdt = layout.base_address + place(buildDsdt(layout), 16);
  size_t fadt_offset = place(buildFadt(layout, facs, dsdt), 16);
  pointer(fadt_offset, kFadtFirmwareCtrl, 4);
  pointer(fadt_offset, kFadtDsdt, 4);
  pointer(fadt_offset, kFadtXDsdt, 8);
  uint64_t fadt = layout.base_address + fadt_offset;
  uint64_t madt = layout.base_address + place(buildMadt(layout), 16);

  Bytes xsdt = header("XSDT", 1, 36);
  std::vector<size_t> xsdt_entries;
  for (uint64_t table : {fadt, madt}) {
    size_t at = xsdt.size();
    xsdt_entries.push_back(at);
    put<uint64_t>(xsdt, at, table);
  }
  finish(xsdt);
  size_t xsdt_offset = place(xsdt, 16);
  for (size_t entry : xsdt_entries) pointer(xsdt_offset, entry, 8);
  pointer(0, kRsdpXsdtOffset, 8);
  uint64_t xsdt_address = layout.base_address + xsdt_offset;

  Bytes rsdp(36, 0);
  std::memcpy(&rsdp[0], "RSD PTR ", 8);
  std::memcpy(&rsdp[9], kOemId, 6);
  rsdp[15] = 2;  // revision: ACPI 2.0+ (XSDT)
  put<uint32_t>(rsdp, 20, 36);
  put<uint64_t>(rsdp, kRsdpXsdtOffset, xsdt_address);
  rsdp[kRsdpChecksumOffset] = static_cast<uint8_t>(-checksum(rsdp.data(), kRsdpChecksummedLength));
  rsdp[kRsdpExtendedChecksumOffset] = static_cast<uint8_t>(-checksum(rsdp.data(), kRsdpLength));
  std::memcpy(blob.data(), rsdp.data(), rsdp.size());
  tables.rsdp_address = layout.base_address;
  tables.blob = std::move(blob);
  return tables;
}

}  // namespace vmmd::acpi
