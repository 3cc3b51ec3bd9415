#include "net/links.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>

#include <cerrno>
#include <memory>

#include "net/tap.h"

namespace vmmd::net {
namespace {

struct LinkPut {
  void operator()(rtnl_link* link) const { rtnl_link_put(link); }
};
struct AddrPut {
  void operator()(rtnl_addr* addr) const { rtnl_addr_put(addr); }
};
struct NlAddrPut {
  void operator()(nl_addr* addr) const { nl_addr_put(addr); }
};
struct CacheFree {
  void operator()(nl_cache* cache) const { nl_cache_free(cache); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;

Result<LinkPtr> getLink(NetlinkSocket& sock, const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return Error("link name '" + name + "' is not valid", EINVAL);
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(sock.get(), 0, name.c_str(), &raw); err < 0) {
    return netlinkError("link " + name, err);
  }
  return LinkPtr(raw);
}

Result<LinkPtr> newLink() {
  LinkPtr link(rtnl_link_alloc());
  if (!link) return Error("netlink: out of memory", ENOMEM);
  return link;
}

}  // namespace

Status createBridge(NetlinkSocket& sock, const std::string& name, const std::string& mac) {
  if (name.empty() || name.size() >= IFNAMSIZ) return Error("bridge name '" + name + "' is not valid", EINVAL);
  auto link = newLink();
  if (!link) return link.error();
  rtnl_link_set_name(link->get(), name.c_str());
  if (int err = rtnl_link_set_type(link->get(), "bridge"); err < 0) return netlinkError("create bridge " + name, err);
  if (!mac.empty()) {
    auto bytes = parseMac(mac);
    if (!bytes) return bytes.error();
    std::unique_ptr<nl_addr, NlAddrPut> address(nl_addr_build(AF_LLC, bytes->data(), bytes->size()));
    if (!address) return Error("netlink: out of memory", ENOMEM);
    rtnl_link_set_addr(link->get(), address.get());
  }
  if (int err = rtnl_link_add(sock.get(), link->get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return netlinkError("create bridge " + name, err);
  }
  return {};
}

Status setLinkUp(NetlinkSocket& sock, const std::string& name) {
  auto link = getLink(sock, name);
  if (!link) return link.error();
  auto change = newLink();
  if (!change) return change.error();
  rtnl_link_set_flags(change->get(), IFF_UP);
  if (int err = rtnl_link_change(sock.get(), link->get(), change->get(), 0); err < 0) return netlinkError("set " + name + " up", err);
  return {};
}

Status addIpv4Address(NetlinkSocket& sock, const std::string& name, const std::string& address, int prefix) {
  auto link = getLink(sock, name);
  if (!link) return link.error();
  in_addr local{};
  if (prefix < 0 || prefix > 32 || ::inet_pton(AF_INET, address.c_str(), &local) != 1) {
    return Error("'" + address + "/" + std::to_string(prefix) + "' is not an IPv4 address", EINVAL);
  }
  uint32_t host_mask = prefix == 0 ? 0xffffffffu : (prefix == 32 ? 0u : (0xffffffffu >> prefix));
  in_addr broadcast{htonl(ntohl(local.s_addr) | host_mask)};
  std::unique_ptr<rtnl_addr, AddrPut> addr(rtnl_addr_alloc());
  std::unique_ptr<nl_addr, NlAddrPut> local_addr(nl_addr_build(AF_INET, &local, sizeof local));
  std::unique_ptr<nl_addr, NlAddrPut> broadcast_addr(nl_addr_build(AF_INET, &broadcast, sizeof broadcast));
  if (!addr || !local_addr || !broadcast_addr) return Error("netlink: out of memory", ENOMEM);
  nl_addr_set_prefixlen(local_addr.get(), prefix);
  rtnl_addr_set_ifindex(addr.get(), rtnl_link_get_ifindex(link->get()));
  rtnl_addr_set_family(addr.get(), AF_INET);
  if (int err = rtnl_addr_set_local(addr.get(), local_addr.get()); err < 0) return netlinkError("address " + address, err);
  if (int err = rtnl_addr_set_broadcast(addr.get(), broadcast_addr.get()); err < 0) return netlinkError("broadcast", err);
  if (int err = rtnl_addr_add(sock.get(), addr.get(), 0); err < 0) {
    return netlinkError("add " + address + "/" + std::to_string(prefix) + " to " + name, err);
  }
  return {};
}

Status setMaster(NetlinkSocket& sock, const std::string& link_name, const std::string& bridge) {
  auto link = getLink(sock, link_name);
  if (!link) return link.error();
  auto master = getLink(sock, bridge);
  if (!master) return master.error();
  if (int err = rtnl_link_enslave_ifindex(sock.get(), rtnl_link_get_ifindex(master->get()), rtnl_link_get_ifindex(link->get()));
      err < 0) {
    return netlinkError("attach " + link_name + " to " + bridge, err);
  }
  return {};
}

Status deleteLink(NetlinkSocket& sock, const std::string& name) {
  auto link = getLink(sock, name);
  if (!link) return link.error();
  if (int err = rtnl_link_delete(sock.get(), link->get()); err < 0) return netlinkError("delete link " + name, err);
  return {};
}

Result<std::optional<std::string>> linkKind(NetlinkSocket& sock, const std::string& name) {
  auto link = getLink(sock, name);
  if (!link) {
    if (link.error().code() == ENODEV) return std::optional<std::string>();
    return link.error();
  }
  const char* type = rtnl_link_get_type(link->get());
  return std::optional<std::string>(type ? type : "");
}

Result<bool> linkExists(NetlinkSocket& sock, const std::string& name) {
  auto kind = linkKind(sock, name);
  if (!kind) return kind.error();
  return kind->has_value();
}

Result<std::vector<HostIpv4Address>> hostIpv4Addresses(NetlinkSocket& sock) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_addr_alloc_cache(sock.get(), &raw); err < 0) return netlinkError("list addresses", err);
  std::unique_ptr<nl_cache, CacheFree> cache(raw);
  std::vector<HostIpv4Address> out;
  for (nl_object* object = nl_cache_get_first(raw); object; object = nl_cache_get_next(object)) {
    auto* addr = reinterpret_cast<rtnl_addr*>(object);
    nl_addr* local = rtnl_addr_get_local(addr);
    if (rtnl_addr_get_family(addr) != AF_INET || !local || nl_addr_get_len(local) != 4) continue;
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, nl_addr_get_binary_addr(local), text, sizeof text);
    const char* label = rtnl_addr_get_label(addr);
    out.push_back({label ? label : "", text, static_cast<int>(rtnl_addr_get_prefixlen(addr))});
  }
  return out;
}

}  // namespace vmmd::net
