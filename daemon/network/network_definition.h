// A network definition (net-define's document):
//   {"name": "default", "mode": "nat" | "isolated" | "bridge", "bridge": "vmmdbr0",
//    "ipv4": {"address": "192.168.124.1", "prefix": 24,
//             "dhcp": {"start": "192.168.124.2", "end": "192.168.124.254"}},
//    "domain": "vm.internal", "autostart": false}
// nat and isolated: vmmd creates the bridge with `ipv4.address/prefix` and runs dnsmasq on it
// (DHCP from the range, static leases per VM NIC, DNS with `domain`); nat adds masquerading.
// bridge: an existing bridge the operator manages; vmmd only attaches taps (no ipv4, no domain).
// Errors name the field ("ipv4.dhcp.start: 10.0.0.5 is outside 192.168.1.0/24").
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "daemon/network/ipv4.h"
#include "qmp/json.h"

namespace vmmd::daemon {

enum class NetworkMode { kNat, kIsolated, kBridge };
std::string_view toString(NetworkMode mode);

struct NetworkIpv4 {
  uint32_t address = 0;  // the bridge's own address, the VMs' gateway and DNS server
  int prefix = 0;
  std::optional<uint32_t> dhcp_start;  // both or neither; without: static leases only
  std::optional<uint32_t> dhcp_end;

  Ipv4Subnet subnet() const { return Ipv4Subnet::of(address, prefix); }
  // Where static leases come from: the DHCP range, else every host address of the subnet.
  uint32_t poolStart() const { return dhcp_start ? *dhcp_start : subnet().network + 1; }
  uint32_t poolEnd() const { return dhcp_end ? *dhcp_end : subnet().broadcast() - 1; }
};

struct NetworkDefinition {
  std::string name;
  NetworkMode mode = NetworkMode::kNat;
  std::string bridge;
  std::optional<NetworkIpv4> ipv4;  // always for nat and isolated, never for bridge
  std::optional<std::string> domain;
  bool autostart = false;

  bool managesBridge() const { return mode != NetworkMode::kBridge; }
};

// Network names: 1..32 of [A-Za-z0-9_-], starting with a letter or digit (they name nftables
// tables and directories).
Status validateNetworkName(std::string_view name);
Result<NetworkDefinition> parseNetworkDefinition(const qmp::JsonValue& document);
Result<NetworkDefinition> parseNetworkDefinition(std::string_view json);
// Canonical JSON: the fields above in that order, absent optionals left out.
std::string serializeNetworkDefinition(const NetworkDefinition& def);
qmp::Json networkDefinitionJson(const NetworkDefinition& def);

// libvirt's default network, which vmmd defines on the first `net-start default`.
NetworkDefinition defaultNetworkDefinition();

}  // namespace vmmd::daemon
