// QMP getfd / closefd as QEMU 7.2 has them: a client passes a descriptor (SCM_RIGHTS) with
// getfd and names it; `migrate` / `migrate-incoming` with "fd:NAME" then use it. This is how a
// confined worker (-sandbox on), which opens and connects nothing itself, gets a migration stream
// or a snapshot's state file from vmmd.
#pragma once

#include "qmp/command_registry.h"

namespace vmmd {

class MonitoredVm;

// The most descriptors one QMP client may have passed and not yet named.
inline constexpr size_t kMaxPassedFds = 8;

void registerFdCommands(qmp::CommandRegistry& registry, MonitoredVm& vm);

}  // namespace vmmd
