// A TCP connect that a migrate_cancel can interrupt: connect(2) to a host that drops SYNs blocks
// for the kernel's whole retry schedule (about two minutes with tcp_syn_retries=6).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd::migration {

// Connects `fd` (a fresh stream socket) to `address`, checking `cancelled` every 100 ms while
// the handshake is pending; the socket is blocking again when it returns. `what` names the peer
// in errors ("127.0.0.1:4444").
Status connectCancellable(const UniqueFd& fd, const sockaddr* address, socklen_t length, const std::atomic<bool>& cancelled,
                          const std::string& what);

}  // namespace vmmd::migration
