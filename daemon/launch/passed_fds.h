// The file descriptors one worker inherits: vmmd opens (or binds) each, gives it here, and gets
// the number it will have in the worker (kFirstPassedFd, then one more each), which is what the
// argv names ("fd=5"). They close in vmmd when this object goes, right after the spawn.
#pragma once

#include <vector>

#include "base/unique_fd.h"

namespace vmmd::daemon {

class PassedFds {
 public:
  // The first number after stdin, stdout and stderr: WorkerHost::kFirstPassedFd.
  static constexpr int kFirstPassedFd = 3;

  // Takes ownership; returns the fd's number in the worker.
  int add(UniqueFd fd);
  // vmmd's own numbers, in the worker's order (what WorkerHost::spawn takes).
  std::vector<int> raw() const;
  size_t size() const { return fds_.size(); }
  // vmmd's copies, once the worker has its own.
  void closeAll() { fds_.clear(); }

 private:
  std::vector<UniqueFd> fds_;
};

}  // namespace vmmd::daemon
