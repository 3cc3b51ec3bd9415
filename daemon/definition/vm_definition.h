// A VM definition: everything vmmd needs to start one guest, as the user wrote it (after
// validation and defaults). It is stored as canonical JSON (see definition_json.h) and turned into
// the worker's argv by launch/worker_argv.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/parse.h"
#include "base/result.h"

namespace vmmd::daemon {

// The definition schema this vmmd reads and writes. A document with a newer schema is refused
// (never half-understood); an older one would be upgraded by the parser.
inline constexpr int kDefinitionSchema = 1;

inline constexpr uint64_t kMinMemoryMib = 16;
// 1 TiB: far above anything this host runs, but small enough that MiB→bytes never overflows and a
// typo like 5120000 is caught at define time rather than at start.
inline constexpr uint64_t kMaxMemoryMib = 1024 * 1024;
inline constexpr uint32_t kMaxVcpus = 254;  // what the xAPIC IDs of the q35 MADT can address
inline constexpr size_t kMaxCmdlineBytes = 2047;  // x86 Linux COMMAND_LINE_SIZE minus the NUL
inline constexpr size_t kMaxDisks = 16;
inline constexpr size_t kMaxNics = 16;

enum class DiskFormat { kRaw, kQcow2 };
// The machine the worker builds. pc: virtio devices on PCI, firmware or direct boot (vmm's q35).
// microvm: QEMU's microvm as vmm builds it: no PCI, virtio-mmio transports announced in the DSDT,
// direct kernel boot only; the fastest to start.
enum class MachineType { kPc, kMicrovm };
// vmm's microvm has this many virtio-mmio transports (vmm/machine/microvm_layout.h
// kTransportCount): every disk, NIC and the agent's virtio-serial controller takes one.
inline constexpr size_t kMicrovmTransports = 8;
// The firmware a VM without a kernel boots through: only PC BIOS (vmm's default SeaBIOS).
enum class Firmware { kBios };
// What the supervisor does when the worker dies without the guest asking (signal, non-zero exit).
//   restart:  start it again, with the backoff below
//   destroy:  record the exit and leave the VM shut off
//   preserve: record the exit and leave the VM "crashed" with its run directory kept for inspection
enum class CrashPolicy { kRestart, kDestroy, kPreserve };
// What happens when the guest powers itself off: stay shut off, or boot again.
enum class PoweroffPolicy { kDestroy, kRestart };

struct DiskSpec {
  std::string id;  // "disk0", "disk1"... when not given
  std::string path;
  DiskFormat format = DiskFormat::kRaw;
  bool readonly = false;
  DiskCache cache = DiskCache::kWriteback;  // QEMU's cache modes, base/parse.h

  bool operator==(const DiskSpec&) const = default;
};

// A NIC is on an existing tap the operator made (ifname), or on a network vmmd manages
// (network: vmmd creates the tap at start, attaches it to the network's bridge and removes it when
// the worker ends). Exactly one of the two is set.
struct NicSpec {
  std::string ifname;   // an existing tap device on the host; empty for a network NIC
  std::string mac;      // lower-case "52:54:00:xx:xx:xx"; generated when not given
  std::string network;  // a vmmd network's name (daemon/network); empty for an ifname NIC

  bool onNetwork() const { return !network.empty(); }
  bool operator==(const NicSpec&) const = default;
};

// Restart delays grow from initial_ms, doubling up to max_ms. After max_attempts restarts in a row
// the VM is left crashed (0 = never give up). A run that lasted reset_after_s seconds or more
// counts as healthy and resets the count.
struct RestartBackoff {
  uint32_t initial_ms = 1000;
  uint32_t max_ms = 60000;
  uint32_t max_attempts = 5;
  uint32_t reset_after_s = 300;

  bool operator==(const RestartBackoff&) const = default;
};

// Per-VM cgroup v2 limits, applied where vmmd has a delegated cgroup tree (its worker's cgroup
// vm-<name>); elsewhere vmmd warns and the VM runs without them.
struct ResourceLimits {
  std::optional<uint32_t> cpu_percent;          // cpu.max: 100 is one host CPU, 250 two and a half
  std::optional<uint64_t> memory_overhead_mib;  // memory.max: the guest's memory plus this

  bool operator==(const ResourceLimits&) const = default;
};
inline constexpr uint32_t kMaxCpuPercent = 100 * kMaxVcpus;

// Booting through firmware from the VM's disks, instead of a kernel given directly.
struct BootSpec {
  Firmware firmware = Firmware::kBios;
  std::optional<std::string> loader;  // a firmware image (vmm -bios); vmm's default when absent
  std::vector<std::string> order;     // disk ids, tried in this order (at least one)

  bool operator==(const BootSpec&) const = default;
};

struct VmDefinition {
  std::string name;
  std::string uuid;  // lower-case canonical form
  uint64_t memory_mib = 0;
  uint32_t vcpus = 1;
  MachineType machine = MachineType::kPc;
  // Exactly one of kernel (direct boot, with initrd and cmdline) and boot (firmware from disks).
  std::optional<std::string> kernel;
  std::optional<BootSpec> boot;
  std::optional<std::string> initrd;
  std::optional<std::string> cmdline;
  std::vector<DiskSpec> disks;
  std::vector<NicSpec> nics;
  bool serial = true;  // COM1 on the VM's console socket
  bool agent = false;  // a virtio-serial port named org.qemu.guest_agent.0 on the qga socket
  bool autostart = false;
  CrashPolicy on_crash = CrashPolicy::kDestroy;
  PoweroffPolicy on_poweroff = PoweroffPolicy::kDestroy;
  RestartBackoff restart_backoff;
  std::optional<ResourceLimits> limits;

  bool operator==(const VmDefinition&) const = default;
};

std::string_view toString(DiskFormat format);
std::string_view toString(MachineType machine);
std::string_view toString(Firmware firmware);
std::string_view toString(DiskCache cache);
std::string_view toString(CrashPolicy policy);
std::string_view toString(PoweroffPolicy policy);
std::optional<DiskFormat> parseDiskFormat(std::string_view text);
std::optional<MachineType> parseMachineType(std::string_view text);
std::optional<Firmware> parseFirmware(std::string_view text);
std::optional<CrashPolicy> parseCrashPolicy(std::string_view text);
std::optional<PoweroffPolicy> parsePoweroffPolicy(std::string_view text);

// The delay before restart number `attempt` (1-based): initial_ms * 2^(attempt-1), capped at max_ms.
uint32_t restartDelayMs(const RestartBackoff& backoff, uint32_t attempt);

// How the VM boots, for people: "kernel /boot/vmlinuz (direct)" or "firmware bios from disk0, disk1".
std::string describeBoot(const VmDefinition& def);

// Checks what the document cannot: kernel, initrd, firmware loader and disk images exist and are readable (disks
// that are not read-only also writable) by this process. "kernel: /boot/x: No such file or directory".
Status checkDefinitionFiles(const VmDefinition& def);

}  // namespace vmmd::daemon
