// QMP query-stats (QEMU 7.2's qapi/stats.json), per vCPU (target "vcpu", one entry per vCPU and
// provider with its qom-path) and for the whole VM (target "vm"):
//   provider "kvm": KVM's binary statistics, as QEMU reports them (exits, io_exits, halt_exits, ...
//     every exit, also those the kernel handles itself); none while the machine is off;
//   provider "vmm": vmm's own counters of the exits that reach it, by reason and by the busiest
//     ports / MMIO addresses ("io_exits_port_0x3f8", "mmio_exits_addr_0xfee00000").
#pragma once

#include "qmp/command_registry.h"

namespace vmmd {

class MonitoredVm;

// Busiest ports and MMIO addresses listed per vCPU and per VM, each space apart.
inline constexpr size_t kQueryStatsTopAddresses = 16;

void registerQueryStats(qmp::CommandRegistry& registry, MonitoredVm& vm);

}  // namespace vmmd
