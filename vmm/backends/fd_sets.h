// The worker's fd sets (QEMU's -add-fd) and the one place where it opens files by path.
//
// A worker that runs without the right to open its VM's files gets them from its parent as
// inherited descriptors: `-add-fd fd=N,set=S[,opaque=PATH]` puts fd N into set S. Every file the
// worker opens by path P (kernel, initrd, disks, qcow2 backing files once resolved to a path,
// /dev/kvm, the pid file, file chardevs) comes through FdSets::open:
//   - P = "/dev/fdset/S": a descriptor of set S (QEMU's syntax);
//   - else, a set one of whose descriptors has opaque=P: that set (vmmd's convention, so backing
//     files and /dev/kvm need no change to the command line). P is compared as a string: for a
//     backing file, its stored name when absolute, else the top image's folder + "/" + name;
//   - else open(2) on P, as without fd sets.
// From a set, the first descriptor whose access mode fits the request is dup'd: a read-only
// request takes an O_RDONLY or O_RDWR descriptor, a write-only one O_WRONLY or O_RDWR, a
// read-write one O_RDWR only; O_DIRECT must match both ways. Creation and truncation flags do not
// apply to a descriptor that already exists. The sets are fixed once the worker starts. Errors
// about the sets themselves carry no errno (code 0), so callers tell them from open(2) failures.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/file_opener.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/config/machine_config.h"

namespace vmmd {

class FdSets final : public FileOpener {
 public:
  static constexpr const char* kPathPrefix = "/dev/fdset/";

  // Checks every descriptor the command line says was inherited (-add-fd, -netdev fd=, -chardev
  // fd=): each must be open, not 0-2 (the standard streams) and named once. Then takes the -add-fd
  // ones (close-on-exec from now on). Two sets may not claim the same opaque path.
  static Result<FdSets> adopt(const config::MachineConfig& config);

  Result<UniqueFd> open(const std::string& path, int flags, mode_t mode = 0) const override;
  std::string realPath(const std::string& path) const override;

 private:
  struct Member {
    UniqueFd fd;
    int status_flags;  // F_GETFL: the access mode and O_DIRECT
    std::string opaque;
  };
  using Set = std::vector<Member>;
  // The set `path` names, or null when it names none (then `error` may say why it is bad).
  const Set* find(const std::string& path, uint64_t& id, std::optional<Error>& error) const;

  std::map<uint64_t, Set> sets_;
};

}  // namespace vmmd
