// What the store keeps besides definitions: each VM's runtime record (enough to re-attach to a
// running worker after a daemon restart) and an append-only event history.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/access/owner.h"
#include "daemon/definition/vm_definition.h"

namespace vmmd::daemon {

enum class VmState { kShutoff, kStarting, kRunning, kPaused, kShuttingDown, kCrashed };

// "shut-off", "starting", "running", "paused", "shutting-down", "crashed".
std::string_view toString(VmState state);
std::optional<VmState> parseVmState(std::string_view text);

// A stop vmmd committed to before acting on it: what a restarted vmmd finishes.
enum class StopIntent { kNone, kShutdownAcpi, kShutdownAgent, kDestroy };

// "shutdown-acpi", "shutdown-agent", "destroy" (kNone is stored as NULL).
std::string_view toString(StopIntent intent);
std::optional<StopIntent> parseStopIntent(std::string_view text);

struct StoredDefinition {
  VmDefinition definition;
  Owner owner;  // who defined it; root for definitions older than owners
  int64_t created_us = 0;  // Unix time, microseconds
  int64_t updated_us = 0;
};

struct RuntimeRecord {
  std::string name;
  VmState state = VmState::kShutoff;
  std::optional<int64_t> pid;
  std::optional<int64_t> start_time;  // /proc/PID/stat field 22, clock ticks since boot
  std::optional<int64_t> started_us;  // Unix time the worker was started (uptime in `vmctl list`)
  std::optional<std::string> qmp_socket;
  std::optional<std::string> console_socket;
  std::optional<std::string> qga_socket;
  std::optional<int64_t> exit_status;  // of the last worker that exited normally
  std::optional<int64_t> exit_signal;  // of the last worker killed by a signal
  int64_t restart_count = 0;
  StopIntent stop_intent = StopIntent::kNone;
  std::optional<int64_t> stop_deadline_us;  // a shutdown's deadline, Unix time
  int64_t stop_timeout_s = 0;               // a shutdown's timeout, for its messages
  bool stop_force = false;                  // a shutdown destroys at its deadline
  std::optional<std::string> boot_id;       // /proc/sys/kernel/random/boot_id when the worker started
  // /proc/PID/exe of the worker once it served QMP: --vmm may be a wrapper that execs the worker.
  std::optional<std::string> worker_exe;
  int64_t updated_us = 0;  // set by the store on save

  bool operator==(const RuntimeRecord&) const = default;
};

// One snapshot of a VM (vmctl snapshot save): the internal snapshot `tag` in each of `disks`
// (qcow2 images, by disk id) and the guest state in `state_file`.
struct SnapshotRecord {
  std::string vm;
  std::string tag;
  int64_t created_us = 0;  // Unix time, microseconds
  std::string state_file;  // absolute path of the migration stream
  int64_t state_bytes = 0;
  std::vector<std::string> disks;  // disk ids, in definition order

  bool operator==(const SnapshotRecord&) const = default;
};

struct EventRecord {
  int64_t id = 0;  // increasing; "events after id N" pages through the history
  int64_t time_us = 0;
  std::string vm;
  std::string kind;  // "defined", "undefined", "state", "crash"...
  std::string detail;

  bool operator==(const EventRecord&) const = default;
};

struct EventDraft {
  std::string kind;
  std::string detail;
};

struct EventQuery {
  std::optional<std::string> vm;  // all VMs when absent
  int64_t after_id = 0;
  int64_t limit = 1000;
};

// A network definition (canonical JSON) and what vmmd made for it while it is active.
struct StoredNetwork {
  std::string name;
  std::string json;
  bool active = false;
  bool created_bridge = false;  // vmmd created the bridge, so net-stop deletes it
  std::optional<int64_t> dnsmasq_pid;
  std::optional<int64_t> dnsmasq_start_time;
};

// A VM NIC's static DHCP lease on a network.
struct NetworkLease {
  std::string network;
  std::string mac;
  std::string vm;
  std::string ipv4;
};

}  // namespace vmmd::daemon
