// What the supervisor needs of a worker, as interfaces: the process (pid, start time, a signal, one
// exit notification), its QMP link, and the host that spawns or adopts processes and makes links.
// vmmd uses the real ones (process_worker_host.h: WorkerProcess and qmp::UvClient); the
// supervisor's unit tests script workers with a fake.
#pragma once

#include <sys/types.h>

#include <cerrno>
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
  // As execute, with `fd` passed on the same message (QMP `getfd`); the caller keeps its copy.
  // Links that cannot pass descriptors answer with an Error (ENOTSUP).
  virtual void executeWithFd(std::string_view command, const qmp::JsonValue* args, int fd, ReplyCallback callback) {
    (void)args;
    (void)fd;
    callback(Error("this QMP link cannot pass a descriptor with '" + std::string(command) + "'", ENOTSUP));
  }
  virtual void close() = 0;

  std::function<void(const qmp::Json& event)> onEvent;
  std::function<void(const Error& why)> onDisconnect;
};

// The unprivileged user a worker runs as (launch/worker_ids.h); none: vmmd's own (vmmd not root).
struct WorkerIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
};

// What /proc says of a process: enough to tell whether it is a given VM's worker.
struct ProcessFacts {
  uint64_t start_time = 0;        // /proc/PID/stat field 22
  std::string exe;                // /proc/PID/exe's target (" (deleted)" once the binary was replaced)
  std::vector<std::string> argv;  // /proc/PID/cmdline
  std::optional<uid_t> uid;       // /proc/PID/status's real uid, when it could be read
};

class WorkerHost {
 public:
  static constexpr int kFirstPassedFd = 3;

  virtual ~WorkerHost() = default;
  // Runs `exe args...` detached; `pass_fds` become its fds 3, 4, ... (kFirstPassedFd on); its
  // output is appended to `log_path`. With an identity it runs as that uid/gid, without
  // supplementary groups, and so without capabilities.
  virtual Result<std::unique_ptr<Worker>> spawn(const std::string& exe, const std::vector<std::string>& args,
                                                const std::string& log_path, Worker::ExitCallback on_exit,
                                                const std::vector<int>& pass_fds,
                                                std::optional<WorkerIdentity> identity) = 0;
  // A worker that outlived the previous vmmd; fails (ESRCH) when it is gone or the pid was reused.
  virtual Result<std::unique_ptr<Worker>> adopt(pid_t pid, uint64_t start_time, Worker::ExitCallback on_exit) = 0;
  virtual std::unique_ptr<WorkerLink> link() = 0;

  // This boot's /proc/sys/kernel/random/boot_id: pid and start time repeat across reboots.
  virtual std::string bootId() = 0;
  // ENOENT (or ESRCH) in the error code when the process is gone.
  virtual Result<ProcessFacts> inspect(pid_t pid) = 0;
  // The process holding the lock on a worker's -pidfile, if any: a worker that outlived a vmmd
  // killed before it recorded the worker's pid still holds it (and the VM's image locks).
  virtual std::optional<pid_t> pidfileHolder(const std::string& pidfile) = 0;
  // A process started with "-uuid UUID": a worker spawned by a vmmd killed before it recorded the
  // pid, which has not taken its pidfile lock yet (a slow host). None by default.
  virtual std::optional<pid_t> processWithUuid(const std::string& uuid) {
    (void)uuid;
    return std::nullopt;
  }
  // SIGKILL to a process that is not ours to watch (the holder above, when it must not run), and
  // waits a bounded time for it to be gone. Refuses when `pid` no longer started at `start_time`.
  virtual Status killProcess(pid_t pid, uint64_t start_time) = 0;
};

}  // namespace vmmd::daemon
