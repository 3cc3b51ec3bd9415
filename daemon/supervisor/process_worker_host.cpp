#include "daemon/supervisor/process_worker_host.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>

#include <algorithm>
#include <filesystem>

#include "base/unique_fd.h"
#include "daemon/process/process_identity.h"
#include "daemon/supervisor/worker_process.h"
#include "qmp/uv_client.h"

namespace vmmd::daemon {
namespace {

static_assert(WorkerProcess::kFirstPassedFd == WorkerHost::kFirstPassedFd);

// A Result of the concrete process, as the interface's Result.
Result<std::unique_ptr<Worker>> asWorker(Result<std::unique_ptr<WorkerProcess>>&& process) {
  if (!process) return process.error();
  return std::unique_ptr<Worker>(std::move(*process));
}

class QmpWorkerLink : public WorkerLink {
 public:
  explicit QmpWorkerLink(uv_loop_t* loop) : client_(loop) {
    client_.onEvent = [this](const qmp::Json& event) {
      if (onEvent) onEvent(event);
    };
    client_.onDisconnect = [this](const Error& why) {
      if (onDisconnect) onDisconnect(why);
    };
  }
  void connect(const std::string& socket_path, std::function<void(Status)> done) override {
    client_.connect(socket_path, std::move(done));
  }
  void execute(std::string_view command, const qmp::JsonValue* args, ReplyCallback callback) override {
    client_.execute(command, args, std::move(callback));
  }
  void executeWithFd(std::string_view command, const qmp::JsonValue* args, int fd, ReplyCallback callback) override {
    client_.executeWithFd(command, args, fd, std::move(callback));
  }
  void close() override { client_.close(); }

 private:
  qmp::UvClient client_;
};

}  // namespace

Result<std::unique_ptr<Worker>> ProcessWorkerHost::spawn(const std::string& exe, const std::vector<std::string>& args,
                                                         const std::string& log_path, Worker::ExitCallback on_exit,
                                                         const std::vector<int>& pass_fds,
                                                         std::optional<WorkerIdentity> identity) {
  return asWorker(WorkerProcess::spawn(loop_, exe, args, log_path, std::move(on_exit), pass_fds, identity));
}

Result<std::unique_ptr<Worker>> ProcessWorkerHost::adopt(pid_t pid, uint64_t start_time, Worker::ExitCallback on_exit) {
  return asWorker(WorkerProcess::adopt(loop_, pid, start_time, std::move(on_exit)));
}

std::unique_ptr<WorkerLink> ProcessWorkerHost::link() { return std::make_unique<QmpWorkerLink>(loop_); }

std::string ProcessWorkerHost::bootId() {
  auto id = daemon::bootId();
  return id ? *id : std::string();
}

Result<ProcessFacts> ProcessWorkerHost::inspect(pid_t pid) {
  ProcessFacts facts;
  auto start = processStartTime(pid);
  if (!start) return start.error();
  facts.start_time = *start;
  auto exe = processExe(pid);
  if (!exe) return exe.error();
  facts.exe = std::move(*exe);
  auto argv = processArgv(pid);
  if (!argv) return argv.error();
  facts.argv = std::move(*argv);
  if (auto uid = processUid(pid)) facts.uid = *uid;
  return facts;
}

std::optional<pid_t> ProcessWorkerHost::pidfileHolder(const std::string& pidfile) { return flockHolder(pidfile); }

std::optional<pid_t> ProcessWorkerHost::processWithUuid(const std::string& uuid) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid()) continue;
    auto argv = processArgv(pid);
    if (!argv) continue;  // gone meanwhile, or not ours to read
    auto flag = std::find(argv->begin(), argv->end(), "-uuid");
    if (flag != argv->end() && flag + 1 != argv->end() && *(flag + 1) == uuid) return pid;
  }
  return std::nullopt;
}

Status ProcessWorkerHost::killProcess(pid_t pid, uint64_t start_time) {
  // Through a pidfd opened before the identity check: the signal cannot reach a process that
  // took the pid since.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return Error::fromErrno("pidfd_open " + std::to_string(pid));
  if (!isSameProcess(pid, start_time)) return Error("process " + std::to_string(pid) + " is not the one inspected", ESRCH);
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) < 0) {
    return Error::fromErrno("kill " + std::to_string(pid));
  }
  // The pidfd turns readable when the process has exited (its locks are released then, reaped
  // or not). A SIGKILL takes effect within milliseconds; 5 s bounds a process stuck in the kernel.
  pollfd p{pidfd.get(), POLLIN, 0};
  int rc = ::poll(&p, 1, 5000);
  if (rc <= 0) return Error("process " + std::to_string(pid) + " did not exit within 5 s of SIGKILL", ETIMEDOUT);
  return {};
}

}  // namespace vmmd::daemon
