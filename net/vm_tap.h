// The tap vmmd creates for a NIC on one of its networks: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
// IFF_MULTI_QUEUE, and not persistent, so the kernel removes the interface when its last queue fd
// closes (the worker that holds it exits, crashed or not). The worker adopts the fd (-netdev
// tap,fd=N, net/tap.h); multi-queue lets it open more queues on the same interface later.
#pragma once

#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd::net {

struct VmTap {
  UniqueFd fd;
  std::string name;  // as the kernel made it from the pattern
};

// `name_pattern` may hold one "%d" for the kernel to number ("vmmdt%d").
Result<VmTap> createVmTap(const std::string& name_pattern);

}  // namespace vmmd::net
