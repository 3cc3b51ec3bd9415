// The whole machine's state, for migration and snapshots: one section per piece of state (each
// vCPU, the VM-wide KVM state, every device model), named by a stable instance id and holding the
// device's own versioned DeviceState. Guest RAM is not in it: the migration stream carries RAM.
// Field layouts of every section: docs/migration-state.md.
//
// Section ids (stable across processes for the same configuration):
//   "kvm/clock"                       kvmclock (KVM_GET_CLOCK)
//   "kvm/irqchip"                     PIC master, PIC slave, IOAPIC (KVM_GET_IRQCHIP)
//   "kvm/pit"                         the in-kernel PIT (KVM_GET_PIT2), when the machine has one
//   "cpu/N"                           vCPU N: registers, XSAVE, MSRs, LAPIC, events, ...
//   "serial/0x3f8" "cmos/0x70" "acpi-pm/0x600" "fw-cfg/0x510" "i8042/0x60"
//                                     the legacy devices the machine has (port 0x92, the reset
//                                     register and port 0x80 have no state, so no section)
//   "pci-host/0xcf8"                  the host bridge: CONFIG_ADDRESS and its own config space
//   "pci/0000:00:SS.0/NAME"           a PCI function: config space + transport + device (NAME:
//                                     "virtio-blk-pci", ...)
//   "virtio-mmio/0xADDRESS/NAME"      a virtio-mmio transport and its device (microvm)
//
// Call order (Machine, machine.h):
//   source:      machine.pause();                      // vCPUs parked (QMP stop does the same)
//                machine.stopDeviceIo();               // devices take no more host input
//                while (machine.requestsInFlight())    // on the main loop: let block
//                  <run one turn of the main loop>;    // completions reach the guest
//                auto state = machine.saveState();     // fails if not paused or not drained
//                ... send the remaining RAM and `state` ...
//                on failure: machine.resumeDeviceIo(); machine.resume();
//   destination: Machine::create(same config); machine.powerOn(/*paused=*/true);
//                ... write RAM into machine.memory() ...
//                machine.loadState(state);              // vCPUs still parked
//                machine.resume();
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/devices/device_state.h"

namespace vmmd {

struct SectionState {
  std::string id;  // stable instance id, e.g. "cpu/0", "pci/0000:00:03.0/virtio-blk-pci"
  DeviceState state;
};

struct MachineState {
  std::vector<SectionState> sections;

  const SectionState* find(const std::string& id) const;
};

// A self-delimiting encoding of a MachineState (a section count, then id + kind + version + bytes
// per section, little-endian), for a snapshot file or a test; no checksum (the stream has one).
std::vector<uint8_t> encodeMachineState(const MachineState& state);
// Refuses truncated or malformed input with an error saying where; never trusts a count.
Result<MachineState> decodeMachineState(std::span<const uint8_t> bytes);

}  // namespace vmmd
