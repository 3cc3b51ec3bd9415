#include "vmm/backends/fd_sets.h"

#include <fcntl.h>

#include <set>

#include "base/parse.h"

namespace vmmd {
namespace {

std::string accessName(int flags) {
  std::string name;
  switch (flags & O_ACCMODE) {
    case O_RDONLY: name = "O_RDONLY"; break;
    case O_WRONLY: name = "O_WRONLY"; break;
    default: name = "O_RDWR"; break;
  }
  return (flags & O_DIRECT) ? name + "|O_DIRECT" : name;
}

bool fits(int have, int want) {
  if ((have & O_DIRECT) != (want & O_DIRECT)) return false;
  int have_mode = have & O_ACCMODE, want_mode = want & O_ACCMODE;
  return have_mode == O_RDWR || have_mode == want_mode;
}

// An inherited descriptor the command line names for `what`: open, and not a standard stream.
Status checkInherited(int fd, const std::string& what, std::set<int>& seen) {
  std::string name = what + ": fd " + std::to_string(fd);
  if (fd <= 2) return Error(name + " is a standard stream (0-2), not a descriptor passed for it");
  if (::fcntl(fd, F_GETFD) < 0) return Error(name + " is not open (the parent must leave it open, without close-on-exec)");
  if (!seen.insert(fd).second) return Error(name + " is named twice on the command line");
  return {};
}

}  // namespace

Result<FdSets> FdSets::adopt(const config::MachineConfig& config) {
  std::set<int> seen;
  for (const auto& netdev : config.netdevs) {
    if (netdev.fd < 0) continue;
    if (auto st = checkInherited(netdev.fd, "-netdev " + netdev.id, seen); !st) return st.error();
  }
  for (const auto& chardev : config.chardevs) {
    if (chardev.fd < 0) continue;
    if (auto st = checkInherited(chardev.fd, "-chardev " + chardev.id, seen); !st) return st.error();
  }
  std::map<std::string, uint64_t> opaque_owner;
  for (const auto& add : config.add_fds) {
    std::string what = "-add-fd set=" + std::to_string(add.set);
    if (auto st = checkInherited(add.fd, what, seen); !st) return st.error();
    if (add.opaque.empty()) continue;
    auto [it, inserted] = opaque_owner.emplace(add.opaque, add.set);
    if (!inserted && it->second != add.set) {
      return Error(what + ": opaque=" + add.opaque + " already names fd set " + std::to_string(it->second));
    }
  }
  // Taken only once all are good: a refused command line closes nothing.
  FdSets sets;
  for (const auto& add : config.add_fds) {
    ::fcntl(add.fd, F_SETFD, FD_CLOEXEC);
    sets.sets_[add.set].push_back(Member{UniqueFd(add.fd), ::fcntl(add.fd, F_GETFL), add.opaque});
  }
  return sets;
}

const FdSets::Set* FdSets::find(const std::string& path, uint64_t& id, std::optional<Error>& error) const {
  if (path.rfind(kPathPrefix, 0) == 0) {
    std::string number = path.substr(std::string_view(kPathPrefix).size());
    auto parsed = parseUnsigned(number);
    if (!parsed) {
      error = Error(path + ": '" + number + "' is not an fd set number (" + kPathPrefix + "N)");
      return nullptr;
    }
    id = *parsed;
    auto it = sets_.find(id);
    if (it == sets_.end()) {
      error = Error(path + ": there is no fd set " + number + " (-add-fd fd=N,set=" + number + ")");
      return nullptr;
    }
    return &it->second;
  }
  for (const auto& [set_id, set] : sets_) {
    for (const auto& member : set) {
      if (member.opaque == path) {
        id = set_id;
        return &set;
      }
    }
  }
  return nullptr;
}

Result<UniqueFd> FdSets::open(const std::string& path, int flags, mode_t mode) const {
  uint64_t id = 0;
  std::optional<Error> error;
  const Set* set = path.empty() ? nullptr : find(path, id, error);
  if (error) return *error;
  if (!set) return plainFiles().open(path, flags, mode);
  std::string offered;
  for (const auto& member : *set) {
    if (fits(member.status_flags, flags)) {
      UniqueFd copy(::fcntl(member.fd.get(), F_DUPFD_CLOEXEC, 3));
      if (!copy) return Error::fromErrno(path + ": dup of fd set " + std::to_string(id) + "'s fd " + std::to_string(member.fd.get()));
      return copy;
    }
    offered += (offered.empty() ? "" : ", ") + accessName(member.status_flags);
  }
  return Error(path + ": fd set " + std::to_string(id) + " has no descriptor open for " + accessName(flags) +
                   " (it has " + offered + ")",
               0);
}

std::string FdSets::realPath(const std::string& path) const {
  uint64_t id = 0;
  std::optional<Error> error;
  const Set* set = find(path, id, error);
  if (!set) return path;
  for (const auto& member : *set) {
    if (!member.opaque.empty()) return member.opaque;
  }
  return path;
}

}  // namespace vmmd
