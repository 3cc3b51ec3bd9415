// A connected NETLINK_ROUTE socket of libnl-route-3, owned: the link and address calls of
// net/links.h go through one. libnl builds and parses the rtnetlink messages (attributes, acks,
// multipart dumps) that we would otherwise marshal by hand (net/README.md says why libnl).
#pragma once

#include <memory>
#include <string_view>

#include "base/result.h"

struct nl_sock;

namespace vmmd::net {

class NetlinkSocket {
 public:
  static Result<NetlinkSocket> open();
  nl_sock* get() const { return sock_.get(); }

 private:
  struct Free {
    void operator()(nl_sock* sock) const;
  };
  explicit NetlinkSocket(nl_sock* sock) : sock_(sock) {}
  std::unique_ptr<nl_sock, Free> sock_;
};

// "<what>: <libnl's message>", with the errno libnl's code stands for (EEXIST, ENODEV...).
Error netlinkError(std::string_view what, int nl_error);

}  // namespace vmmd::net
