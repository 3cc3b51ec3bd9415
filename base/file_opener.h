// How a program opens the files its input names. Code that opens files by path (kernel loading,
// disk images and their backing chains, /dev/kvm) takes a FileOpener instead of calling open(2),
// so that a process without the right to open a path can be handed the descriptor instead: the
// worker's fd sets (vmm/backends/fd_sets.h) are one FileOpener, plainFiles() is the other.
#pragma once

#include <fcntl.h>

#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd {

class FileOpener {
 public:
  virtual ~FileOpener() = default;
  // An fd for `path` with open(2)'s `flags` (O_CLOEXEC is always added); the error names the path.
  virtual Result<UniqueFd> open(const std::string& path, int flags, mode_t mode = 0) const = 0;
  // The host path that `path` stands for (an fd set's path for "/dev/fdset/N"), against which
  // relative names found inside the file (a qcow2 backing file) resolve. `path` itself by default.
  virtual std::string realPath(const std::string& path) const { return path; }
};

// open(2), nothing else.
class PlainFileOpener final : public FileOpener {
 public:
  Result<UniqueFd> open(const std::string& path, int flags, mode_t mode = 0) const override {
    UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, mode));
    if (!fd) return Error::fromErrno(path);
    return fd;
  }
};

inline const FileOpener& plainFiles() {
  static const PlainFileOpener opener;
  return opener;
}

}  // namespace vmmd
