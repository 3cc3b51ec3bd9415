// The control socket's network commands, root's alone: net-define {definition}, net-undefine
// {name}, net-start {name}, net-stop {name}, net-list, net-info {name}, net-autostart {name,
// enabled}. Another caller gets "permission denied". Each change is logged with the caller.
#pragma once

#include "daemon/network/network_manager.h"
#include "qmp/command_registry.h"

namespace vmmd::daemon {

void registerNetworkCommands(qmp::CommandRegistry& registry, NetworkManager& networks);

}  // namespace vmmd::daemon
