#include "daemon/launch/passed_fds.h"

namespace vmmd::daemon {

int PassedFds::add(UniqueFd fd) {
  fds_.push_back(std::move(fd));
  return kFirstPassedFd + static_cast<int>(fds_.size()) - 1;
}

std::vector<int> PassedFds::raw() const {
  std::vector<int> raw;
  raw.reserve(fds_.size());
  for (const UniqueFd& fd : fds_) raw.push_back(fd.get());
  return raw;
}

}  // namespace vmmd::daemon
