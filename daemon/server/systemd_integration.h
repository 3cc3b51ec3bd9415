// The two pieces of the systemd protocol vmmd needs, without linking libsystemd:
// sd_notify (a datagram to $NOTIFY_SOCKET) and socket activation ($LISTEN_PID/$LISTEN_FDS).
// Both are no-ops outside systemd.
#pragma once

#include <optional>
#include <string_view>

#include "base/result.h"

namespace vmmd::daemon {

// Sends e.g. "READY=1" or "STOPPING=1". Ok when not under systemd (no $NOTIFY_SOCKET).
Status notifySystemd(std::string_view state);

// The first socket passed by systemd (fd 3) when $LISTEN_PID is this process; the variables are
// then removed so the workers vmmd spawns do not inherit them.
std::optional<int> takeActivatedSocket();

}  // namespace vmmd::daemon
