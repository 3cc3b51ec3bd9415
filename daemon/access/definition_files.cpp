#include "daemon/access/definition_files.h"

#include <algorithm>
#include <fstream>

#include "daemon/access/open_as_owner.h"
#include "daemon/launch/worker_files.h"

namespace vmmd::daemon {
namespace {

// A tap's owner or group as /sys/class/net/NAME/{owner,group} reports it; -1 when unset or when
// there is no such interface (yet).
long tapAttribute(const std::string& ifname, const char* attribute) {
  std::ifstream in("/sys/class/net/" + ifname + "/" + attribute);
  long value = -1;
  if (!(in >> value)) return -1;
  return value;
}

bool tapExists(const std::string& ifname) {
  std::ifstream in("/sys/class/net/" + ifname + "/tun_flags");
  return static_cast<bool>(in);
}

}  // namespace

// Exactly what the launch will open for the worker, opened the same way (and closed again).
Status checkDefinitionFilesAsOwner(const VmDefinition& def, const Owner& owner) {
  auto files = openWorkerFiles(def, ownerFileOpener(owner));
  if (!files) return files.error();
  return checkTapsAsOwner(def, owner);
}

// vmmd (CAP_NET_ADMIN) attaches the taps; for a non-root owner it applies the kernel's own rule
// for attaching to a persistent tap without that capability (TUNSETIFF): the tap's owner is the
// owner's uid, or its group one of the owner's groups.
Status checkTapsAsOwner(const VmDefinition& def, const Owner& owner) {
  if (owner.isRoot()) return {};
  for (size_t i = 0; i < def.nics.size(); ++i) {
    if (def.nics[i].onNetwork()) continue;  // vmmd makes that tap itself, for the VM alone
    const std::string& ifname = def.nics[i].ifname;
    if (!tapExists(ifname)) continue;  // made later by the operator; the start attaches or fails
    long tap_uid = tapAttribute(ifname, "owner"), tap_gid = tapAttribute(ifname, "group");
    bool by_uid = tap_uid >= 0 && static_cast<uid_t>(tap_uid) == owner.uid;
    bool by_gid = tap_gid >= 0 && (static_cast<gid_t>(tap_gid) == owner.gid ||
                                   std::find(owner.groups.begin(), owner.groups.end(), static_cast<gid_t>(tap_gid)) != owner.groups.end());
    if (!by_uid && !by_gid) {
      return Error("nics[" + std::to_string(i) + "].ifname: tap " + ifname + ": permission denied for " + owner.describe() +
                   " (a tap made with `ip tuntap add " + ifname + " mode tap user UID|group GID`)", EACCES);
    }
  }
  return {};
}

}  // namespace vmmd::daemon
