// What the supervisor needs of a worker, as interfaces: the process (pid, start time, a signal, one
// exit notification), its QMP link, and the host that spawns or adopts processes and makes links.
// vmmd uses the real ones (process_worker_host.h: WorkerProcess and qmp::UvClient); the
// supervisor's unit tests script workers with a fake.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "qmp/command_registry.h"
#include "qmp/json.h"

namespace vmmd::daemon {

struct WorkerExit {
  std::optional<int64_t> status;  // exit() code of a child
  std::optional<int64_t> signal;  // the signal that killed a child
  // "exited with status 1", "killed by signal 9 (Killed)", "exited (status unknown: not our child)".
  std::string describe() const;
};

class Worker {
 public:
  using ExitCallback = std::function<void(const WorkerExit&)>;
  virtual ~Worker() = default;
  virtual pid_t pid() const = 0;
  // /proc/PID/stat's start time, recorded so that a restarted vmmd re-attaches to this very process.
  virtual std::optional<uint64_t> startTime() const = 0;
  virtual bool exited() const = 0;
  virtual Status signal(int sig) = 0;
};

// The QMP connection to one worker.
class WorkerLink {
 public:
  using ReplyCallback = std::function<void(Result<qmp::CommandResult>&& reply)>;
  virtual ~WorkerLink() = default;
  // Completes once QMP is negotiated, or with why not.
  virtual void connect(const std::string& socket_path, std::function<void(Status)> done) = 0;
  virtual void execute(std::string_view command, const qmp::JsonValue* args, ReplyCallback callback) = 0;
  virtual void close() = 0;

  std::function<void(const qmp::Json& event)> onEvent;
  std::function<void(const Error& why)> onDisconnect;
};

class WorkerHost {
 public:
  static constexpr int kFirstPassedFd = 3;

  virtual ~WorkerHost() = default;
  // Runs `exe args...` detached; `pass_fds` become its fds 3, 4, ... (kFirstPassedFd on); its
  // output is appended to `log_path`.
  virtual Result<std::unique_ptr<Worker>> spawn(const std::string& exe, const std::vector<std::string>& args,
                                                const std::string& log_path, Worker::ExitCallback on_exit,
                                                const std::vector<int>& pass_fds) = 0;
  // A worker that outlived the previous vmmd; fails (ESRCH) when it is gone or the pid was reused.
  virtual Result<std::unique_ptr<Worker>> adopt(pid_t pid, uint64_t start_time, Worker::ExitCallback on_exit) = 0;
  virtual std::unique_ptr<WorkerLink> link() = 0;
};

}  // namespace vmmd::daemon
