// vmmd's control socket: a Unix stream socket (mode 0660, optionally owned by --group) whose
// clients are served by a qmp::UvServer. vmmd accepts connections itself so that it can read each
// client's SO_PEERCRED and SO_PEERGROUPS first; the credentials ride on the session (peerOf) for
// the audit log and the authorization of every command (authorization.h).
//
// Bounds: a non-root uid holds at most `per_user` connections at once (root 16 times as many);
// one more is closed at once, with a logged reason. All clients together never take the last
// quarter of vmmd's descriptors (RLIMIT_NOFILE) nor those it held when the socket was made:
// those stay for starting VMs, opening files as their owners, the store. A connection whose credentials cannot be read
// is closed. When vmmd runs out of descriptors (EMFILE), a spare descriptor kept for that moment
// is closed, the pending connection accepted and closed, and the spare reopened, so the listener
// never spins on a connection it cannot take. (Message size and idle clients: UvServerOptions.)
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <map>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "base/uv_handle.h"
#include "qmp/session.h"
#include "qmp/unix_socket.h"
#include "qmp/uv_server.h"

namespace vmmd::daemon {

using PeerCredentials = qmp::PeerCredentials;

// The credentials of a control-socket session, or null for a session without them.
const PeerCredentials* peerOf(const qmp::Session& session);

// A control message (one request) is at most this long: a definition is a few KiB, libvirt XML a
// few tens; anything longer is refused and the client disconnected.
inline constexpr size_t kMaxControlMessageBytes = size_t{1} << 20;
// And at most this many JSON tokens (a definition has a few hundred), so that the parser's token
// index (16 bytes a token) stays near 1 MiB too: a client holds about 2 MiB at most.
inline constexpr size_t kMaxControlMessageTokens = size_t{64} << 10;

struct ControlSocketLimits {
  uint32_t per_user = 64;
  uint32_t root_factor = 16;  // root's cap is per_user * root_factor
};

class ControlSocket {
 public:
  ControlSocket(uv_loop_t* loop, qmp::UvServer& server, ControlSocketLimits limits = {});
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  // Binds `path` (replacing a stale socket, refusing any other file), mode 0660, group `gid`.
  Status listen(const std::string& path, std::optional<gid_t> gid);
  // A listening socket handed over by systemd (LISTEN_FDS).
  Status adopt(int fd);

  // A client's connection has ended (after its own bookkeeping here).
  std::function<void(qmp::Session& session)> onClientGone;

 private:
  Status watch();
  static void onReadable(uv_poll_t* handle, int status, int events);
  void acceptAll();
  // Out of descriptors: takes one pending connection with the spare and closes it. False when
  // there was no spare to give (accepting then pauses briefly instead of spinning).
  bool shedWithSpare();
  void pauseAccepting();
  // Whether a new connection from `peer` fits its uid's cap; logs the refusal when it does not.
  bool admit(const PeerCredentials& peer);

  uv_loop_t* loop_;
  qmp::UvServer& server_;
  ControlSocketLimits limits_;
  UniqueFd listen_fd_;
  UniqueFd spare_fd_;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> resume_timer_;
  std::string unlink_path_;
  PeerCredentials pending_;  // the connection being handed to the server right now
  std::map<uid_t, uint32_t> clients_per_uid_;
  uint64_t clients_ = 0;
  uint64_t max_clients_ = 0;  // RLIMIT_NOFILE less its reserved quarter and what was in use
  std::map<uid_t, uint64_t> refusals_per_uid_;  // for logging the 1st, 2nd, 4th, 8th... only
  uint64_t shed_ = 0;
};

}  // namespace vmmd::daemon
