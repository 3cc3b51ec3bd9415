#include "net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstdio>
#include <cstring>

namespace vmmd::net {

Status Tap::configure(int fd) {
  int header_size = kVnetHeaderSize;
  if (::ioctl(fd, TUNSETVNETHDRSZ, &header_size) < 0) return Error::fromErrno("TUNSETVNETHDRSZ");
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Error::fromErrno("tap: O_NONBLOCK");
  return {};
}

Result<Tap> Tap::open(const std::string& name) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) return Error::fromErrno("open /dev/net/tun");
  ifreq request{};
  request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (name.size() >= IFNAMSIZ) return Error("tap: interface name '" + name + "' is too long");
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), TUNSETIFF, &request) < 0) return Error::fromErrno("tap " + (name.empty() ? "(new)" : name) + ": TUNSETIFF");
  if (auto st = configure(fd.get()); !st) return st.error().withContext("tap " + name);
  return Tap(std::move(fd), request.ifr_name);
}

Result<Tap> Tap::adopt(int fd) {
  UniqueFd owned(fd);  // ours from here on, refused or not
  ifreq request{};
  if (::ioctl(fd, TUNGETIFF, &request) < 0) return Error::fromErrno("tap fd " + std::to_string(fd) + ": not a tap device");
  if (!(request.ifr_flags & IFF_TAP)) return Error("fd " + std::to_string(fd) + " is a tun, not a tap device");
  if (!(request.ifr_flags & IFF_VNET_HDR)) return Error("tap fd " + std::to_string(fd) + " was opened without IFF_VNET_HDR");
  if (auto st = configure(owned.get()); !st) return st.error();
  return Tap(std::move(owned), request.ifr_name);
}

Status Tap::setOffloads(bool csum, bool tso4, bool tso6, bool ecn) {
  unsigned offloads = (csum ? TUN_F_CSUM : 0u) | (csum && tso4 ? TUN_F_TSO4 : 0u) | (csum && tso6 ? TUN_F_TSO6 : 0u) |
                      (csum && ecn ? TUN_F_TSO_ECN : 0u);
  if (::ioctl(fd_.get(), TUNSETOFFLOAD, offloads) < 0) return Error::fromErrno("tap " + name_ + ": TUNSETOFFLOAD");
  return {};
}

Result<std::array<uint8_t, 6>> parseMac(const std::string& text) {
  std::array<uint8_t, 6> mac{};
  unsigned bytes[6];
  char tail;
  if (text.size() != 17 || std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &bytes[0], &bytes[1], &bytes[2], &bytes[3],
                                       &bytes[4], &bytes[5], &tail) != 6) {
    return Error("'" + text + "' is not a MAC address (xx:xx:xx:xx:xx:xx)");
  }
  for (int i = 0; i < 6; ++i) mac[static_cast<size_t>(i)] = static_cast<uint8_t>(bytes[i]);
  if (mac[0] & 1) return Error("MAC address " + text + " is a multicast address");
  return mac;
}

}  // namespace vmmd::net
