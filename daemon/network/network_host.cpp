#include "daemon/network/network_host.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "base/log.h"
#include "base/unique_fd.h"
#include "daemon/network/nat_rules.h"
#include "net/links.h"
#include "net/nftables.h"

namespace vmmd::daemon {
namespace {

Status enableIpv4Forwarding() {
  const char* path = "/proc/sys/net/ipv4/ip_forward";
  UniqueFd fd(::open(path, O_RDWR | O_CLOEXEC));
  if (!fd) return Error::fromErrno(std::string("open ") + path);
  char current = '0';
  if (::pread(fd.get(), &current, 1, 0) == 1 && current == '1') return {};
  if (::pwrite(fd.get(), "1\n", 2, 0) != 2) return Error::fromErrno(std::string("write ") + path);
  log::info("IPv4 forwarding turned on (net.ipv4.ip_forward = 1) for NAT networks");
  return {};
}

}  // namespace

Status checkHostForStart(const NetworkDefinition& def) {
  auto sock = net::NetlinkSocket::open();
  if (!sock) return sock.error();
  auto kind = net::linkKind(*sock, def.bridge);
  if (!kind) return kind.error();
  if (!def.managesBridge()) {
    if (!*kind) return Error("bridge: " + def.bridge + " does not exist on the host (mode bridge uses the operator's bridge)");
    if (**kind != "bridge") return Error("bridge: " + def.bridge + " is a " + (**kind).c_str() + " link, not a bridge");
    return {};
  }
  if (*kind) return Error("bridge: a link named " + def.bridge + " already exists on the host and is not vmmd's");
  auto addresses = net::hostIpv4Addresses(*sock);
  if (!addresses) return addresses.error();
  Ipv4Subnet subnet = def.ipv4->subnet();
  for (const auto& host : *addresses) {
    auto address = parseIpv4(host.address);
    if (!address) continue;
    Ipv4Subnet theirs = Ipv4Subnet::of(*address, host.prefix);
    if (subnet.overlaps(theirs)) {
      return Error("ipv4: " + subnet.text() + " overlaps the host's address " + host.address + "/" +
                   std::to_string(host.prefix) + " on " + host.link);
    }
  }
  return {};
}

std::string bridgeMacFor(const std::string& network) {
  // FNV-1a of the name: the same network gets the same gateway MAC at every start, so guests'
  // ARP caches stay right across restarts.
  uint32_t hash = 2166136261u;
  for (unsigned char c : network) hash = (hash ^ c) * 16777619u;
  char text[18];
  std::snprintf(text, sizeof text, "52:54:00:%02x:%02x:%02x", (hash >> 16) & 0xff, (hash >> 8) & 0xff, hash & 0xff);
  return text;
}

Status bringUpBridge(const NetworkDefinition& def) {
  auto sock = net::NetlinkSocket::open();
  if (!sock) return sock.error();
  auto exists = net::linkExists(*sock, def.bridge);
  if (!exists) return exists.error();
  if (!*exists) {
    if (auto st = net::createBridge(*sock, def.bridge, bridgeMacFor(def.name)); !st) return st;
  }
  if (auto st = net::addIpv4Address(*sock, def.bridge, formatIpv4(def.ipv4->address), def.ipv4->prefix);
      !st && st.error().code() != EEXIST) {
    return st;
  }
  return net::setLinkUp(*sock, def.bridge);
}

Status installNetworkRules(const NetworkDefinition& def) {
  if (def.mode == NetworkMode::kNat) {
    if (auto st = enableIpv4Forwarding(); !st) return st;
  }
  auto nft = net::Nftables::open();
  if (!nft) return nft.error();
  auto done = nft->run(natRulesetCommands(def));
  if (!done) return done.error().withContext("network '" + def.name + "'");
  return {};
}

Status removeNetworkRules(const std::string& network) {
  auto nft = net::Nftables::open();
  if (!nft) return nft.error();
  auto done = nft->run(natRemoveCommands(network));
  if (!done) return done.error().withContext("network '" + network + "'");
  return {};
}

Status removeBridge(const std::string& bridge) {
  auto sock = net::NetlinkSocket::open();
  if (!sock) return sock.error();
  if (auto st = net::deleteLink(*sock, bridge); !st && st.error().code() != ENODEV) return st;
  return {};
}

}  // namespace vmmd::daemon
