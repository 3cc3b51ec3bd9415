// QMP query-stats (QEMU 7.2's qapi/stats.json): vmm's own VM-exit counters under the provider
// "vmm", per vCPU (target "vcpu", one entry per vCPU with its qom-path) and for the whole VM
// (target "vm"). The "kvm" provider (KVM's binary statistics) is not offered: asking only for it
// returns an empty list, as QEMU does for a provider that has nothing for the target.
#pragma once

#include "qmp/command_registry.h"

namespace vmmd {

class MonitoredVm;

// Busiest ports and MMIO addresses listed per vCPU and per VM, each space apart.
inline constexpr size_t kQueryStatsTopAddresses = 16;

void registerQueryStats(qmp::CommandRegistry& registry, MonitoredVm& vm);

}  // namespace vmmd
