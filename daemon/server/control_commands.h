// The control socket's QMP commands (vm-define, vm-start, ... vm-qmp) and its VM_STATE_CHANGE
// event, as entries of a qmp::CommandRegistry bound to the supervisor. Every command that changes
// something is logged with the caller's peer credentials.
#pragma once

#include "daemon/supervisor/supervisor.h"
#include "qmp/command_registry.h"

namespace vmmd::daemon {

// Seconds vm-shutdown waits for the guest when the caller gives no timeout.
inline constexpr uint32_t kDefaultShutdownTimeoutS = 60;

void registerControlCommands(qmp::CommandRegistry& registry, Supervisor& supervisor);

// The data of a VM_STATE_CHANGE event: {"name": ..., "state": ..., "reason": ...}.
qmp::Json stateChangeData(const std::string& vm, VmState state, const std::string& reason);

}  // namespace vmmd::daemon
