// One worker process as the supervisor sees it: either a child it spawned (in its own session, so
// it outlives vmmd: a kill of vmmd or `systemctl restart` with KillMode=process leaves it running)
// or a process it re-attached to after a restart (not its child: only a pidfd tells of its end).
// Either way the owner gets one onExit call; the exit status is known only for children.
// Destroying a WorkerProcess stops watching; it never kills the process.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "base/uv_handle.h"

namespace vmmd::daemon {

struct WorkerExit {
  std::optional<int64_t> status;  // exit() code of a child
  std::optional<int64_t> signal;  // the signal that killed a child
  // "exited with status 1", "killed by signal 9 (Killed)", "exited (status unknown: not our child)".
  std::string describe() const;
};

class WorkerProcess {
 public:
  using ExitCallback = std::function<void(const WorkerExit&)>;

  // Runs `exe args...` detached (setsid), stdin from /dev/null, stdout and stderr appended to
  // `log_path`, so that the worker's own error message survives for the start error. The child
  // inherits `pass_fds` as its fds 3, 4, ... (kFirstPassedFd on); every other fd of ours stays
  // behind (they are all close-on-exec), so no worker holds another's sockets.
  static Result<std::unique_ptr<WorkerProcess>> spawn(uv_loop_t* loop, const std::string& exe,
                                                      const std::vector<std::string>& args,
                                                      const std::string& log_path, ExitCallback on_exit,
                                                      const std::vector<int>& pass_fds = {});
  static constexpr int kFirstPassedFd = 3;
  // Watches an existing process through a pidfd. Fails when it is gone or is not the process that
  // started at `start_time` (pid reuse); ESRCH in the error code then.
  static Result<std::unique_ptr<WorkerProcess>> adopt(uv_loop_t* loop, pid_t pid, uint64_t start_time,
                                                      ExitCallback on_exit);

  explicit WorkerProcess(ExitCallback on_exit) : on_exit_(std::move(on_exit)) {}
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool exited() const { return exited_; }
  // Through the pidfd, so a signal can never reach a process that reused the pid.
  Status signal(int sig);

 private:
  void finish(const WorkerExit& exit);

  ExitCallback on_exit_;
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UvHandle<uv_process_t> child_;
  UvHandle<uv_poll_t> poll_;
  bool exited_ = false;
};

}  // namespace vmmd::daemon
