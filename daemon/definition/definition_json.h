// The JSON form of a VM definition (schema 1):
//
//   {"schema": 1, "name": "web1", "uuid": "…", "memory": 512, "vcpus": 2, "machine": "pc",
//    "kernel": "/abs/bzImage", "initrd": "/abs/initrd.img", "cmdline": "console=ttyS0",
//    (or, instead of kernel/initrd/cmdline: "boot": {"firmware": "bios", "loader": "/abs/bios.bin",
//                                                   "order": ["disk0"]})
//    "disks": [{"id": "disk0", "path": "/abs/root.qcow2", "format": "qcow2",
//               "readonly": false, "cache": "writeback"}],
//    "nics": [{"ifname": "tap0", "mac": "52:54:00:12:34:56"}, {"network": "default"}],
//    "serial": true, "agent": false, "autostart": false,
//    "on_crash": "destroy", "on_poweroff": "destroy",
//    "restart_backoff": {"initial_ms": 1000, "max_ms": 60000, "max_attempts": 5, "reset_after_s": 300},
//    "limits": {"cpu_percent": 150, "memory_overhead_mib": 64}}
//
// limits (optional, each member optional): the worker's cgroup v2 cpu.max (cpu_percent, 100 = one
// host CPU, 1..25400) and memory.max (the guest's memory + memory_overhead_mib), applied where vmmd
// has a delegated cgroup tree.
// Required: schema, name, memory (MiB), kernel or boot; disks[].path and .format; nics[].ifname
// (an existing tap) or nics[].network (a network vmmd manages; defined when the VM is), not both.
// boot: the VM starts through firmware (bios: vmm's SeaBIOS, or the image in loader) from the disks
// in order (disk ids; absent: every disk, in the order of disks), with no kernel, initrd or cmdline.
// machine: "pc" (the default: virtio on PCI, firmware or direct boot) or "microvm" (virtio-mmio,
// no PCI, no firmware: needs kernel, and at most 8 disks + NICs + the agent together).
// disks[].cache is one of QEMU's cache modes: writeback, none, writethrough, directsync, unsafe
// (base/parse.h; "off" is read as none).
// Everything else has the default shown in vm_definition.h. Paths must be absolute because the
// daemon's working directory is not the user's.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "daemon/definition/vm_definition.h"

namespace vmmd::daemon {

inline constexpr size_t kMaxDefinitionBytes = 1024 * 1024;

// Parses and validates. Errors name the field: "vcpus: must be between 1 and 254",
// "disks[1].format: must be raw or qcow2", "nics[0].colour: unknown field".
// A missing uuid, MAC or disk id is generated, so the result is complete and parse(serialize(d)) == d.
Result<VmDefinition> parseDefinition(std::string_view json);

// Canonical JSON: compact, fixed key order, every field explicit (defaults included), absent
// initrd/cmdline/limits omitted. Equal definitions give byte-identical text.
std::string serializeDefinition(const VmDefinition& def);

}  // namespace vmmd::daemon
