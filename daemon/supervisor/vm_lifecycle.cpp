#include "daemon/supervisor/vm_lifecycle.h"

namespace vmmd::daemon {
namespace {

bool isLive(VmPhase p) {
  return p == VmPhase::kStarting || p == VmPhase::kRunning || p == VmPhase::kPaused || p == VmPhase::kShuttingDown;
}

std::optional<VmLifecycle> to(VmPhase phase, VmPhase before = VmPhase::kRunning) { return VmLifecycle{phase, before}; }

}  // namespace

std::optional<VmLifecycle> transition(const VmLifecycle& from, VmEvent event) {
  const VmPhase p = from.phase;
  switch (event) {
    case VmEvent::kLaunched:
      // A pending restart launched early by vm-start, or a power-off with on_poweroff restart
      // (the stop is recorded first: shut-off).
      if (p == VmPhase::kShutoff || p == VmPhase::kRestartPending) return to(VmPhase::kStarting);
      return std::nullopt;
    case VmEvent::kGuestRunning:
      // A re-attached worker that was shutting down still is, whatever its guest says.
            if (p == VmPhase::kShuttingDown) return from;
      if (p == VmPhase::kStarting || p == VmPhase::kRunning || p == VmPhase::kPaused) return to(VmPhase::kRunning);
      return std::nullopt;
    case VmEvent::kGuestFoundPaused:
      if (p == VmPhase::kShuttingDown) return from;
      if (isLive(p)) return to(VmPhase::kPaused);
      return std::nullopt;
    case VmEvent::kPaused:
      if (p == VmPhase::kRunning) return to(VmPhase::kPaused);
      return std::nullopt;
    case VmEvent::kResumed:
      if (p == VmPhase::kPaused) return to(VmPhase::kRunning);
      return std::nullopt;
    case VmEvent::kShutdownRequested:
      if (p == VmPhase::kRunning || p == VmPhase::kPaused) return to(VmPhase::kShuttingDown, p);
      return std::nullopt;
    case VmEvent::kShutdownAbandoned:
      if (p == VmPhase::kShuttingDown) return to(from.before == VmPhase::kPaused ? VmPhase::kPaused : VmPhase::kRunning);
      return std::nullopt;
    case VmEvent::kDestroyRequested:
      if (isLive(p)) return to(VmPhase::kDestroying, p);
      if (p == VmPhase::kDestroying) return from;
      return std::nullopt;
    case VmEvent::kStopped:
      // From shut-off: a start that failed before its worker existed.
      if (p != VmPhase::kCrashed) return to(VmPhase::kShutoff);
      return std::nullopt;
    case VmEvent::kCrashedRestarting:
      // From restart-pending: a restarted vmmd schedules the restart its predecessor had pending.
      if (p == VmPhase::kStarting || p == VmPhase::kRunning || p == VmPhase::kPaused || p == VmPhase::kRestartPending) {
        return to(VmPhase::kRestartPending);
      }
      return std::nullopt;
    case VmEvent::kCrashedKept:
      if (p == VmPhase::kStarting || p == VmPhase::kRunning || p == VmPhase::kPaused || p == VmPhase::kRestartPending) {
        return to(VmPhase::kCrashed);
      }
      return std::nullopt;
  }
  return std::nullopt;
}

VmState visibleState(const VmLifecycle& lifecycle) {
  switch (lifecycle.phase) {
    case VmPhase::kShutoff: return VmState::kShutoff;
    case VmPhase::kStarting: return VmState::kStarting;
    case VmPhase::kRunning: return VmState::kRunning;
    case VmPhase::kPaused: return VmState::kPaused;
    case VmPhase::kShuttingDown: return VmState::kShuttingDown;
    // Until the worker is gone, a VM being destroyed shows where it was.
    case VmPhase::kDestroying: return visibleState(VmLifecycle{lifecycle.before, VmPhase::kRunning});
    case VmPhase::kRestartPending:
    case VmPhase::kCrashed: return VmState::kCrashed;
  }
  return VmState::kShutoff;
}

VmLifecycle lifecycleOf(VmState recorded) {
  switch (recorded) {
    case VmState::kShutoff: return {VmPhase::kShutoff};
    case VmState::kStarting: return {VmPhase::kStarting};
    case VmState::kRunning: return {VmPhase::kRunning};
    case VmState::kPaused: return {VmPhase::kPaused};
    case VmState::kShuttingDown: return {VmPhase::kShuttingDown};
    case VmState::kCrashed: return {VmPhase::kCrashed};
  }
  return {};
}

std::string_view toString(VmPhase phase) {
  switch (phase) {
    case VmPhase::kShutoff: return "shut-off";
    case VmPhase::kStarting: return "starting";
    case VmPhase::kRunning: return "running";
    case VmPhase::kPaused: return "paused";
    case VmPhase::kShuttingDown: return "shutting-down";
    case VmPhase::kDestroying: return "destroying";
    case VmPhase::kRestartPending: return "restart-pending";
    case VmPhase::kCrashed: return "crashed";
  }
  return "?";
}

std::string_view toString(VmEvent event) {
  switch (event) {
    case VmEvent::kLaunched: return "launched";
    case VmEvent::kGuestRunning: return "guest-running";
    case VmEvent::kGuestFoundPaused: return "guest-found-paused";
    case VmEvent::kPaused: return "paused";
    case VmEvent::kResumed: return "resumed";
    case VmEvent::kShutdownRequested: return "shutdown-requested";
    case VmEvent::kShutdownAbandoned: return "shutdown-abandoned";
    case VmEvent::kDestroyRequested: return "destroy-requested";
    case VmEvent::kStopped: return "stopped";
    case VmEvent::kCrashedRestarting: return "crashed-restarting";
    case VmEvent::kCrashedKept: return "crashed-kept";
  }
  return "?";
}

}  // namespace vmmd::daemon
