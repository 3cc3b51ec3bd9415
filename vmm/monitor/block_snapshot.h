// QMP internal snapshots of a running guest's qcow2 drives, as QEMU 7.2 (qapi/block-core.json):
//   blockdev-snapshot-internal-sync {device, name}           -> {}
//   blockdev-snapshot-delete-internal-sync {device, id?, name?} -> SnapshotInfo
// `device` is the drive id query-block reports. Each runs on the monitor's thread while guest
// I/O to that drive waits (the qcow2 layer quiesces it: requests in flight finish first, new
// ones wait until the table is switched). Errors are QEMU's GenericError texts.
#pragma once

#include <chrono>

#include "qmp/command_registry.h"

namespace vmmd {

class MonitoredVm;

// vm_clock-nsec of a new snapshot: time since `started` (the worker's start; paused time
// included, where QEMU counts only running time).
void registerBlockSnapshotCommands(qmp::CommandRegistry& registry, MonitoredVm& vm,
                                   std::chrono::steady_clock::time_point started);

}  // namespace vmmd
