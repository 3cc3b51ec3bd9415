// Host network links through rtnetlink (libnl-route-3): the bridges vmmd creates for its
// networks, their addresses, and the taps it puts on them. Every call names the link in its error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/netlink_socket.h"

namespace vmmd::net {

// A new bridge `name` (EEXIST in the error code when a link of that name exists), down. With
// `mac` ("52:54:00:12:34:56") the bridge keeps that address: without one, the kernel gives a
// bridge the lowest address of its ports, so it would change as taps come and go.
Status createBridge(NetlinkSocket& sock, const std::string& name, const std::string& mac = "");
Status setLinkUp(NetlinkSocket& sock, const std::string& name);
// `address`/`prefix` on link `name` ("192.168.124.1", 24), with its broadcast address.
Status addIpv4Address(NetlinkSocket& sock, const std::string& name, const std::string& address, int prefix);
// Makes `bridge` the master of `link` (a tap joins a bridge).
Status setMaster(NetlinkSocket& sock, const std::string& link, const std::string& bridge);
// Removes link `name`; ENODEV in the error code when there is none.
Status deleteLink(NetlinkSocket& sock, const std::string& name);
// The link's kind ("bridge", "tun", "veth"; "" for a plain device), nullopt when no such link.
Result<std::optional<std::string>> linkKind(NetlinkSocket& sock, const std::string& name);
Result<bool> linkExists(NetlinkSocket& sock, const std::string& name);

struct HostIpv4Address {
  std::string link;
  std::string address;  // dotted quad
  int prefix = 0;
};
// Every IPv4 address configured on the host (this network namespace).
Result<std::vector<HostIpv4Address>> hostIpv4Addresses(NetlinkSocket& sock);

}  // namespace vmmd::net
