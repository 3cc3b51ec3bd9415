// vmmd's networks (issue 16): named definitions in the store (nat, isolated, bridge), and for an
// active one the host side vmmd made for it: the bridge and its address (netlink), the NAT or
// isolation rules (one nftables table per network), and one dnsmasq (DHCP + DNS) that vmmd starts,
// restarts when it dies and re-adopts after a vmmd restart. The VM side (the supervisor) asks for
// a tap per NIC that names a network (attachNic) and gives it back when the VM stops (detachNic).
// All calls on the loop thread.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/store/store.h"
#include "qmp/json.h"

namespace vmmd::daemon {

// A tap vmmd created for one NIC of one VM, attached to its network's bridge and up.
struct NicAttachment {
  UniqueFd tap;          // the tap's queue fd, for the worker's -netdev tap,fd=N
  std::string tap_name;  // "vmmdt<N>"; gone once the last fd closes (not persistent)
  std::string bridge;
  std::string network;
  std::string ipv4;  // the static lease's address; empty for mode "bridge"
};

struct NetworkManagerConfig {
  std::string state_dir;  // networks keep dnsmasq's files in <state_dir>/networks/<name>/
  std::string dnsmasq = "/usr/sbin/dnsmasq";
  // A dnsmasq that dies is started again at most this many times in restart_window_s; after that
  // the network stays active without DHCP/DNS and net-info says so (a start/stop cycle resets it).
  int dnsmasq_max_restarts = 5;
  int restart_window_s = 60;
};

class NetworkManager {
 public:
  NetworkManager(uv_loop_t* loop, Store& store, NetworkManagerConfig config);
  ~NetworkManager();
  NetworkManager(const NetworkManager&) = delete;
  NetworkManager& operator=(const NetworkManager&) = delete;

  // ---- the VM side (the contract of issue 16) ----
  // At VM start, per NIC that names a network (the network must be active, else an error naming it):
  // creates a tap (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR|IFF_MULTI_QUEUE, not persistent, so it vanishes
  // with the last fd = when the worker dies), attaches it to the network's bridge, sets it up;
  // for nat/isolated: a static DHCP lease MAC -> address (allocated once, kept in the store, stable
  // across restarts) with hostname = VM name, and dnsmasq reloaded.
  Result<NicAttachment> attachNic(const std::string& network, const std::string& vm_name, const std::string& mac);
  // At VM stop/crash/undefine: removes the tap if it still exists.
  void detachNic(const std::string& tap_name);
  // At VM undefine: drops its static leases (and reloads the dnsmasqs concerned).
  void releaseVm(const std::string& vm_name);
  // Definition-time check: the network is defined (error names it otherwise).
  Status checkNetworkDefined(const std::string& network) const;
  // The address dnsmasq leased to MAC on NETWORK (from its lease file), if any.
  std::optional<std::string> leasedAddress(const std::string& network, const std::string& mac) const;
  // Who uses a network (the names of running VMs with a NIC on it), so net-stop/net-undefine of a
  // network in use is refused naming them. Set by the supervisor side.
  void setUsersQuery(std::function<std::vector<std::string>(const std::string& network)> query);

  // ---- the control commands (root only; daemon/server/network_commands.cpp) ----
  // net-define: the JSON document (network_definition.h); errors name the field.
  Status define(const qmp::JsonValue& document);
  Status undefine(const std::string& name);
  // net-start; "default" is defined first (libvirt's default network) when no network has that name.
  Status start(const std::string& name);
  Status stop(const std::string& name);
  Status setAutostart(const std::string& name, bool enabled);
  // net-list: [{"name","mode","bridge","state","autostart"}...], sorted by name.
  Result<qmp::Json> list() const;
  // net-info: the definition plus "state", "dnsmasq" {"pid","restarts"}, "leases" [...].
  Result<qmp::Json> info(const std::string& name) const;

  // ---- vmmd's own life cycle ----
  // At vmmd start, before the VMs: re-adopts the dnsmasq of every network the store says is active
  // (never a second one), brings back what is missing, then starts the autostart networks.
  void recover();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmmd::daemon
