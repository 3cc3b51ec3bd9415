// Who a VM belongs to: the credentials of the control-socket client that defined it (SO_PEERCRED
// uid and gid, SO_PEERGROUPS supplementary groups), kept with the definition in the store. Files
// in the definition are opened with these credentials (open_as_owner.h), and only the owner and
// root may see or act on the VM (mayAccess).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmmd::daemon {

struct Owner {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, as the kernel reported them

  bool isRoot() const { return uid == 0; }
  // "uid 1000" for messages: the uid is what a reader can look up.
  std::string describe() const { return "uid " + std::to_string(uid); }
  bool operator==(const Owner&) const = default;

  // Definitions made before owners were recorded belong to root, as does vmmd's own work.
  static Owner root() { return Owner{}; }
};

// Whether `caller` may see and act on a VM owned by `owner`: root on every VM, anyone else on
// their own (same uid; groups give no share, as a VM's files were opened with its owner's rights).
inline bool mayAccess(const Owner& caller, const Owner& owner) { return caller.isRoot() || caller.uid == owner.uid; }

// The supplementary groups as stored: decimal gids separated by commas ("" for none).
std::string formatGroups(const std::vector<gid_t>& groups);
// The inverse; nullopt for anything but that form.
std::optional<std::vector<gid_t>> parseGroups(std::string_view text);

}  // namespace vmmd::daemon
