// The nftables rules of one network, in a table of its own ("ip vmmd-<name>"), so that stopping
// the network removes exactly what starting it added and nothing of anyone else's.
//   nat:      masquerade from the subnet to anything not the subnet; forward: accept from the
//             bridge (from the subnet), accept replies to it, drop any other traffic of the bridge
//   isolated: forward: drop everything from and to the bridge (DHCP/DNS to the host stay open)
//   bridge:   no table (the operator's bridge, the operator's rules)
#pragma once

#include <string>

#include "daemon/network/network_definition.h"

namespace vmmd::daemon {

std::string natTableName(const std::string& network);
// One nft transaction that replaces the table (creating it when absent).
std::string natRulesetCommands(const NetworkDefinition& def);
// One nft transaction that removes the table, absent or not.
std::string natRemoveCommands(const std::string& network);

}  // namespace vmmd::daemon
