// A VM's lifecycle as the supervisor drives it: one enum of phases, one of events, and a pure
// transition function that says which events a phase accepts and where each leads. The supervisor
// keeps one VmLifecycle per supervised VM; what it shows (vm-list, VM_STATE_CHANGE) and persists is
// visibleState(), the six wire states.
//
// Shaped for persisting intents before acting (a later change): a stop in progress is a phase of
// its own (shutting-down, destroying) and says where an abandoned shutdown returns to; the
// shutdown's deadline is data of the shutdown (ShutdownPlan), not a timer's secret.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "daemon/store/records.h"

namespace vmmd::daemon {

enum class VmPhase {
  kShutoff,         // no worker
  kStarting,        // a worker was spawned; its guest does not run yet
  kRunning,
  kPaused,
  kShuttingDown,    // power-off requested; waiting (until a deadline) for the worker to exit
  kDestroying,      // SIGKILL sent; waiting for the exit
  kRestartPending,  // crashed; a restart is scheduled (on_crash restart, backoff)
  kCrashed,         // crashed and left so (on_crash preserve, or restarts given up)
};
inline constexpr VmPhase kAllPhases[] = {VmPhase::kShutoff,      VmPhase::kStarting,   VmPhase::kRunning,
                                         VmPhase::kPaused,       VmPhase::kShuttingDown, VmPhase::kDestroying,
                                         VmPhase::kRestartPending, VmPhase::kCrashed};

enum class VmEvent {
  kLaunched,           // a worker was spawned
  kGuestRunning,       // the worker says its guest runs (start's `cont`, or where a re-attached one stands)
  kGuestFoundPaused,   // a re-attached (or started) worker says its guest is paused
  kPaused,             // STOP, or vm-pause done
  kResumed,            // RESUME, or vm-resume done
  kShutdownRequested,  // vm-shutdown: power-off asked of the guest
  kShutdownAbandoned,  // the request was refused, or timed out without force
  kDestroyRequested,   // SIGKILL sent (vm-destroy, a forced shutdown timeout, a failed start)
  kStopped,            // the worker ended as asked or by a guest power-off (or a crash with policy destroy)
  kCrashedRestarting,  // the worker crashed; a restart is scheduled
  kCrashedKept,        // the worker crashed (or its restart failed) and the VM stays crashed
};
inline constexpr VmEvent kAllEvents[] = {
    VmEvent::kLaunched,          VmEvent::kGuestRunning,     VmEvent::kGuestFoundPaused, VmEvent::kPaused,
    VmEvent::kResumed,           VmEvent::kShutdownRequested, VmEvent::kShutdownAbandoned, VmEvent::kDestroyRequested,
    VmEvent::kStopped,           VmEvent::kCrashedRestarting, VmEvent::kCrashedKept};

struct VmLifecycle {
  VmPhase phase = VmPhase::kShutoff;
  // While shutting down or destroying: the phase the VM was in before (running or paused; what an
  // abandoned shutdown returns to, and what a VM being destroyed still shows).
  VmPhase before = VmPhase::kRunning;

  bool operator==(const VmLifecycle&) const = default;
};

// The lifecycle after `event`, or nullopt when `from` does not accept it (the supervisor then
// ignores the event, or refuses the command). Pure.
std::optional<VmLifecycle> transition(const VmLifecycle& from, VmEvent event);

// What vm-list and VM_STATE_CHANGE say, and the store keeps.
VmState visibleState(const VmLifecycle& lifecycle);
// The lifecycle a restarted vmmd resumes from a recorded state, for a worker it re-attaches to.
VmLifecycle lifecycleOf(VmState recorded);

// Names for logs and test failures: "restart-pending", "kShutdownRequested".
std::string_view toString(VmPhase phase);
std::string_view toString(VmEvent event);

// How vm-shutdown asks the guest to power off: the ACPI power button, or guest-shutdown through
// the guest agent (for guests that ignore the button; needs "agent": true and a running qemu-ga).
enum class ShutdownMode { kAcpi, kAgent };

// A shutdown in progress: what was asked, and by when the worker must have exited.
struct ShutdownPlan {
  ShutdownMode mode = ShutdownMode::kAcpi;
  uint32_t timeout_s = 0;
  bool force = false;        // destroy at the deadline instead of giving up
  int64_t deadline_us = 0;   // Unix time, microseconds
};

}  // namespace vmmd::daemon
