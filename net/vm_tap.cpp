#include "net/vm_tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstring>

namespace vmmd::net {

Result<VmTap> createVmTap(const std::string& name_pattern) {
  if (name_pattern.empty() || name_pattern.size() >= IFNAMSIZ) return Error("tap name '" + name_pattern + "' is not valid", EINVAL);
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) return Error::fromErrno("open /dev/net/tun");
  ifreq request{};
  request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
  std::strncpy(request.ifr_name, name_pattern.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), TUNSETIFF, &request) < 0) return Error::fromErrno("create tap " + name_pattern + ": TUNSETIFF");
  // Never TUNSETPERSIST: the interface lives exactly as long as a queue fd does.
  return VmTap{std::move(fd), request.ifr_name};
}

}  // namespace vmmd::net
