// The daemon's end of a VM's serial console. The worker's console socket takes one client and
// drops output nobody reads, so the daemon is that client from the moment the worker starts
// (before the guest runs: workers start with -S) and relays: every byte the guest prints goes to
// a bounded in-memory backlog, to <vm dir>/console.log and to every attached client; whatever an
// attached client types goes to the guest. Clients attach on <vm dir>/tty.sock (`vmctl console`)
// and first receive the backlog, so a marker printed before they came is still shown.
#pragma once

#include <uv.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd::daemon {

class ConsoleRelay {
 public:
  static constexpr size_t kBacklogBytes = 64 * 1024;
  static constexpr off_t kMaxLogBytes = 1 << 20;  // console.log restarts empty beyond this

  ConsoleRelay(uv_loop_t* loop, std::string log_path);
  ~ConsoleRelay();
  ConsoleRelay(const ConsoleRelay&) = delete;
  ConsoleRelay& operator=(const ConsoleRelay&) = delete;

  // Listens for `vmctl console` clients: mode 0660, group `gid` when given. With `owner_uid`, the
  // socket is that uid's with mode 0600 from the first instant: only the VM's owner (and root)
  // attach, never the rest of the group.
  Status listen(const std::string& attach_path, std::optional<gid_t> gid = std::nullopt,
                std::optional<uid_t> owner_uid = std::nullopt);
  // Connects to the worker's console socket; `done` gets the outcome.
  void connectWorker(const std::string& console_socket, std::function<void(Status)> done);

  const std::string& backlog() const { return backlog_; }
  size_t attachedClients() const { return clients_.size(); }

  struct Pipe;  // one libuv pipe (worker, listener or client), freed by its close callback

 private:
  void onGuestOutput(std::string_view bytes);
  void onClientInput(std::string_view bytes);
  void send(Pipe* pipe, std::string_view bytes);
  void drop(Pipe* pipe);
  static void onAccept(uv_stream_t* server, int status);

  uv_loop_t* loop_;
  std::string log_path_;
  UniqueFd log_;
  std::string backlog_;
  Pipe* worker_ = nullptr;            // owned; freed by its close callback
  Pipe* listener_ = nullptr;          // owned; freed by its close callback
  std::vector<Pipe*> clients_;        // owned; freed by their close callbacks
  std::string attach_path_;
};

}  // namespace vmmd::daemon
