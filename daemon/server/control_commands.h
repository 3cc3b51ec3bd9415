// The control socket's QMP commands (vm-define, vm-start, ... vm-qmp) and its VM_STATE_CHANGE
// event, as entries of a qmp::CommandRegistry bound to the supervisor. Every command that changes
// something is logged with the caller's peer credentials.
#pragma once

#include "daemon/supervisor/supervisor.h"
#include "qmp/command_registry.h"

namespace vmmd::daemon {

// Seconds vm-shutdown waits for the guest when the caller gives no timeout.
inline constexpr uint32_t kDefaultShutdownTimeoutS = 60;

// Seconds vm-agent-command waits for the agent when the caller gives no timeout.
inline constexpr double kDefaultAgentTimeoutS = 10;

// vm-agent-command's "command": an object, or a string holding one (as libvirt's
// qemu-agent-command takes it); either {"execute": NAME[, "arguments": {...}]}.
Result<qmp::Json> agentRequestArg(const qmp::JsonValue& command);

void registerControlCommands(qmp::CommandRegistry& registry, Supervisor& supervisor);

// The data of a VM_STATE_CHANGE event: {"name": ..., "state": ..., "reason": ...}.
qmp::Json stateChangeData(const std::string& vm, VmState state, const std::string& reason);

}  // namespace vmmd::daemon
