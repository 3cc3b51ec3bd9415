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
#include "daemon/supervisor/worker.h"

namespace vmmd::daemon {

class WorkerProcess : public Worker {
 public:

  // Runs `exe args...` detached (setsid), stdin from /dev/null, stdout and stderr appended to
  // `log_path`, so that the worker's own error message survives for the start error. The child
  // inherits `pass_fds` as its fds 3, 4, ... (kFirstPassedFd on); every other fd of ours stays
  // behind (they are all close-on-exec), so no worker holds another's sockets. With `identity`
  // the child switches to that gid and uid before exec (libuv's setgid, setgroups(0), setuid): a
  // root vmmd's worker then has no capability left (CapEff and CapPrm 0).
  static Result<std::unique_ptr<WorkerProcess>> spawn(uv_loop_t* loop, const std::string& exe,
                                                      const std::vector<std::string>& args,
                                                      const std::string& log_path, ExitCallback on_exit,
                                                      const std::vector<int>& pass_fds = {},
                                                      std::optional<WorkerIdentity> identity = std::nullopt);
  static constexpr int kFirstPassedFd = 3;
  // Watches an existing process through a pidfd. Fails when it is gone or is not the process that
  // started at `start_time` (pid reuse); ESRCH in the error code then.
  static Result<std::unique_ptr<WorkerProcess>> adopt(uv_loop_t* loop, pid_t pid, uint64_t start_time,
                                                      ExitCallback on_exit);

  explicit WorkerProcess(ExitCallback on_exit) : on_exit_(std::move(on_exit)) {}
  ~WorkerProcess() override;
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  pid_t pid() const override { return pid_; }
  std::optional<uint64_t> startTime() const override;
  bool exited() const override { return exited_; }
  // Through the pidfd, so a signal can never reach a process that reused the pid.
  Status signal(int sig) override;

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
