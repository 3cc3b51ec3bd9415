// Who may do what on the control socket. A VM belongs to the client that defined it; root (uid 0)
// may see and act on every VM, anyone else only on their own: vm-list shows only them, events
// carry only them, and a command naming another user's VM is refused with a permission error, as
// libvirt's ACLs answer "access denied" for a domain the caller may not use (a name is not a
// secret: vm-define already says when one is taken).
#pragma once

#include <optional>
#include <string>

#include "daemon/access/owner.h"
#include "daemon/supervisor/supervisor.h"
#include "qmp/command_registry.h"
#include "qmp/session.h"

namespace vmmd::daemon {

// The caller's credentials (SO_PEERCRED, SO_PEERGROUPS). A session without them — none reaches
// the command table, ControlSocket drops such connections — counts as nobody (uid 65534), never root.
Owner callerOf(const qmp::Session& session);

// Why `caller` may not act on VM `name`, or nullopt when it may (or when the VM is not defined:
// the command itself then says so). "VM 'web1': permission denied: it belongs to another user".
std::optional<qmp::QmpError> refusal(Supervisor& supervisor, const Owner& caller, const std::string& name);

}  // namespace vmmd::daemon
