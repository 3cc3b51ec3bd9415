#include "daemon/server/authorization.h"

#include "base/log.h"
#include "daemon/server/control_socket.h"

namespace vmmd::daemon {

namespace {
constexpr uid_t kNobody = 65534;
}  // namespace

Owner callerOf(const qmp::Session& session) {
  const PeerCredentials* peer = peerOf(session);
  if (!peer) return Owner{kNobody, kNobody, {}};
  return Owner{peer->uid, peer->gid, peer->groups};
}

std::optional<qmp::QmpError> refusal(Supervisor& supervisor, const Owner& caller, const std::string& name) {
  if (caller.isRoot()) return std::nullopt;
  auto owner = supervisor.ownerOf(name);
  if (!owner || mayAccess(caller, *owner)) return std::nullopt;
  log::warning("VM '" + name + "': refused to " + caller.describe() + " (it belongs to " + owner->describe() + ")");
  return qmp::QmpError::generic("VM '" + name + "': permission denied: it belongs to another user");
}

}  // namespace vmmd::daemon
