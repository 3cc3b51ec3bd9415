#include "daemon/supervisor/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "daemon/process/process_identity.h"

namespace vmmd::daemon {
namespace {

Result<UniqueFd> openPidfd(pid_t pid) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return Error::fromErrno("pidfd_open " + std::to_string(pid));
  return UniqueFd(static_cast<int>(fd));
}

}  // namespace

std::string WorkerExit::describe() const {
  if (signal) return "killed by signal " + std::to_string(*signal) + " (" + ::strsignal(static_cast<int>(*signal)) + ")";
  if (status) return "exited with status " + std::to_string(*status);
  return "exited (status unknown: re-attached after a vmmd restart)";
}

Result<std::unique_ptr<WorkerProcess>> WorkerProcess::spawn(uv_loop_t* loop, const std::string& exe,
                                                            const std::vector<std::string>& args,
                                                            const std::string& log_path, ExitCallback on_exit,
                                                            const std::vector<int>& pass_fds,
                                                            std::optional<WorkerIdentity> identity) {
  // O_APPEND: vmmd caps the log by truncating it in place (log_rotation.h); the worker's next
  // write then lands at the new end instead of its old offset.
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640));
  if (!log) return Error::fromErrno("open " + log_path);
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) return Error::fromErrno("open /dev/null");

  std::vector<std::string> storage;
  storage.reserve(args.size() + 1);
  storage.push_back(exe);
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);

  // libuv dup2()s each of these to its index in the child, which clears close-on-exec there only.
  std::vector<int> child_fds = {devnull.get(), log.get(), log.get()};
  child_fds.insert(child_fds.end(), pass_fds.begin(), pass_fds.end());
  std::vector<uv_stdio_container_t> stdio(child_fds.size());
  for (size_t i = 0; i < child_fds.size(); ++i) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = child_fds[i];
  }

  uv_process_options_t options{};
  options.file = exe.c_str();
  options.args = argv.data();
  options.stdio = stdio.data();
  options.stdio_count = static_cast<int>(stdio.size());
  // DETACHED = setsid(): the worker leads its own session, so a signal to vmmd's process group
  // (Ctrl-C on a foreground vmmd, systemd's KillMode=process) does not reach it.
  options.flags = UV_PROCESS_DETACHED;
  if (identity) {
    // libuv calls setgroups(0, NULL) too when it sets a gid, so no supplementary group (root's,
    // kvm's, disk's) stays with the worker.
    options.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    options.uid = identity->uid;
    options.gid = identity->gid;
  }
  options.exit_cb = [](uv_process_t* handle, int64_t status, int term_signal) {
    auto* self = static_cast<WorkerProcess*>(handle->data);
    if (!self) return;
    WorkerExit exit;
    if (term_signal != 0) exit.signal = term_signal;
    else exit.status = status;
    self->finish(exit);
  };

  auto process = std::make_unique<WorkerProcess>(std::move(on_exit));
  process->child_ = makeUvHandle<uv_process_t>();
  process->child_->data = process.get();
  int rc = uv_spawn(loop, process->child_.get(), &options);
  if (rc < 0) {
    // A failed uv_spawn still initialised the handle; it must be closed like any other.
    process->child_->data = nullptr;
    return Error(std::string("spawn ") + exe + ": " + uv_strerror(rc), -rc);
  }
  process->pid_ = process->child_->pid;
  // Signals go through a pidfd for children too; until the exit callback has reaped it the pid
  // cannot be reused, so opening it now is race-free.
  if (auto fd = openPidfd(process->pid_)) process->pidfd_ = std::move(*fd);
  return process;
}

Result<std::unique_ptr<WorkerProcess>> WorkerProcess::adopt(uv_loop_t* loop, pid_t pid, uint64_t start_time,
                                                            ExitCallback on_exit) {
  auto fd = openPidfd(pid);
  if (!fd) return fd.error();
  // Checked after opening the pidfd: the pidfd now pins this exact process, so if the identity
  // matches here it is the recorded worker and not a process that took its pid.
  if (!isSameProcess(pid, start_time) || isZombie(pid)) {
    return Error("process " + std::to_string(pid) + " is not the recorded worker any more", ESRCH);
  }
  auto process = std::make_unique<WorkerProcess>(std::move(on_exit));
  process->pid_ = pid;
  process->pidfd_ = std::move(*fd);
  process->poll_ = makeUvHandle<uv_poll_t>();
  process->poll_->data = process.get();
  int rc = uv_poll_init(loop, process->poll_.get(), process->pidfd_.get());
  if (rc == 0) {
    rc = uv_poll_start(process->poll_.get(), UV_READABLE, [](uv_poll_t* handle, int, int) {
      auto* self = static_cast<WorkerProcess*>(handle->data);
      if (!self) return;
      uv_poll_stop(handle);
      self->finish(WorkerExit{});
    });
  }
  if (rc < 0) return Error(std::string("watch pidfd: ") + uv_strerror(rc), -rc);
  return process;
}

WorkerProcess::~WorkerProcess() {
  if (child_) child_->data = nullptr;
  if (poll_) poll_->data = nullptr;
}

void WorkerProcess::finish(const WorkerExit& exit) {
  if (exited_) return;
  exited_ = true;
  // The callback may destroy this object: run a local copy and touch nothing afterwards.
  ExitCallback callback = std::move(on_exit_);
  if (callback) callback(exit);
}

std::optional<uint64_t> WorkerProcess::startTime() const {
  auto start = processStartTime(pid_);
  return start ? std::optional(*start) : std::nullopt;
}

Status WorkerProcess::signal(int sig) {
  if (exited_) return Error("process " + std::to_string(pid_) + " has exited", ESRCH);
  if (pidfd_) {
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) == 0) return {};
    return Error::fromErrno("signal " + std::to_string(pid_));
  }
  if (::kill(pid_, sig) == 0) return {};
  return Error::fromErrno("kill " + std::to_string(pid_));
}

}  // namespace vmmd::daemon
