// vmmd's end of one VM's guest-agent channel (the worker's qga socket). The agent protocol is
// blocking request/response over a channel that serves one client and one command at a time, so
// each command runs as a qmp::AgentClient call on libuv's thread pool (never on the loop thread),
// one at a time per VM in arrival order; the connection is kept between commands and made again
// after any failure. Before every command the channel is resynchronised (guest-sync-delimited, at
// most kSyncTimeout), as libvirt does: the agent may have restarted or the guest closed the port
// since the last one, and only the sync tells "no agent" from "slow command".
//
// A command's completion always runs on the loop thread, even when the channel object is gone by
// then (the VM's worker exited meanwhile). A stuck agent holds one pool thread until the
// command's timeout at most.
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "qmp/agent_client.h"
#include "qmp/json.h"

namespace vmmd::daemon {

class AgentChannel {
 public:
  using Duration = std::chrono::milliseconds;
  // The whole reply object ({"return": ...} or {"error": ...}), or why there is none; the
  // error code is ENOTCONN when no agent answered the sync.
  using Done = std::function<void(Result<qmp::Json>)>;
  static constexpr Duration kSyncTimeout = Duration(5000);

  // What vm-info reports: from the guest opening/closing the port (VSERPORT_CHANGE) and from the
  // outcome of the last sync; unknown until either has happened (e.g. after a vmmd restart).
  enum class State { kUnknown, kConnected, kDisconnected };

  AgentChannel(uv_loop_t* loop, std::string socket_path);
  ~AgentChannel();
  AgentChannel(const AgentChannel&) = delete;
  AgentChannel& operator=(const AgentChannel&) = delete;

  // `request`: {"execute": NAME[, "arguments": {...}]}.
  void submit(qmp::Json request, Duration timeout, Done done);
  State state() const;
  void setGuestOpen(bool open);

 private:
  struct Shared;
  struct Job;
  static void startNext(const std::shared_ptr<Shared>& shared);

  std::shared_ptr<Shared> shared_;
};

std::string_view toString(AgentChannel::State state);

}  // namespace vmmd::daemon
