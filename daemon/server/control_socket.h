// vmmd's control socket: a Unix stream socket (mode 0660, optionally owned by --group) whose
// clients are served by a qmp::UvServer. vmmd accepts connections itself so that it can read each
// client's SO_PEERCRED first; the credentials ride on the session (peerOf) for the audit log.
#pragma once

#include <sys/types.h>
#include <uv.h>

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

class ControlSocket {
 public:
  ControlSocket(uv_loop_t* loop, qmp::UvServer& server);
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  // Binds `path` (replacing a stale socket, refusing any other file), mode 0660, group `gid`.
  Status listen(const std::string& path, std::optional<gid_t> gid);
  // A listening socket handed over by systemd (LISTEN_FDS).
  Status adopt(int fd);

 private:
  Status watch();
  void acceptAll();

  uv_loop_t* loop_;
  qmp::UvServer& server_;
  UniqueFd listen_fd_;
  UvHandle<uv_poll_t> poll_;
  std::string unlink_path_;
  PeerCredentials pending_;  // the connection being handed to the server right now
};

}  // namespace vmmd::daemon
