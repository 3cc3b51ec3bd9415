#include "net/netlink_socket.h"

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <cerrno>
#include <string>

namespace vmmd::net {

void NetlinkSocket::Free::operator()(nl_sock* sock) const { nl_socket_free(sock); }

Result<NetlinkSocket> NetlinkSocket::open() {
  nl_sock* raw = nl_socket_alloc();
  if (!raw) return Error("netlink: out of memory", ENOMEM);
  NetlinkSocket sock(raw);
  if (int err = nl_connect(raw, NETLINK_ROUTE); err < 0) return netlinkError("netlink: connect", err);
  return sock;
}

namespace {
// libnl's own codes (NLE_*) are not errnos; the few callers branch on these.
int errnoOf(int nl_error) {
  switch (nl_error < 0 ? -nl_error : nl_error) {
    case NLE_EXIST: return EEXIST;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV: return ENODEV;
    case NLE_PERM: return EPERM;
    case NLE_BUSY: return EBUSY;
    case NLE_INVAL: return EINVAL;
    default: return EIO;
  }
}
}  // namespace

Error netlinkError(std::string_view what, int nl_error) {
  return Error(std::string(what) + ": " + nl_geterror(nl_error), errnoOf(nl_error));
}

}  // namespace vmmd::net
