// What an active network is on the host, made and unmade through netlink and nftables: the
// bridge vmmd owns (nat/isolated), its address, its nftables table, IPv4 forwarding (nat).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/network/network_definition.h"

namespace vmmd::daemon {

// nat/isolated at start: refuses a subnet that overlaps an address the host already has, or a
// bridge name a link already has (one that is not vmmd's). bridge: refuses a bridge that does
// not exist or is not a bridge.
Status checkHostForStart(const NetworkDefinition& def);
// The bridge's own MAC for a network: 52:54:00 and three bytes from its name, stable.
std::string bridgeMacFor(const std::string& network);
// Creates what is missing of the bridge, its address and up state (a restarted vmmd repairs).
Status bringUpBridge(const NetworkDefinition& def);
// Replaces the network's nftables table with its rules, and for nat turns IPv4 forwarding on
// (/proc/sys/net/ipv4/ip_forward = 1; left on at stop, as other users may rely on it).
Status installNetworkRules(const NetworkDefinition& def);
// Both absent already: fine.
Status removeNetworkRules(const std::string& network);
Status removeBridge(const std::string& bridge);

}  // namespace vmmd::daemon
