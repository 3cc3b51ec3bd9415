#include "tests/daemon/fake_worker.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>

namespace vmmd::daemon::testing {
namespace {

std::string dirOf(const std::string& path) { return std::filesystem::path(path).parent_path().string(); }

qmp::Json object(const std::string& json) {
  auto parsed = qmp::parseJson(json.empty() ? "{}" : json);
  return parsed ? std::move(*parsed) : qmp::jsonObject();
}

// The supervisor's handle on a fake process; like WorkerProcess, dropping it stops watching.
class FakeWorker : public Worker {
 public:
  FakeWorker(FakeWorkerHost& host, std::shared_ptr<FakeProcess> process) : host_(host), process_(std::move(process)) {}
  ~FakeWorker() override { process_->on_exit = nullptr; }

  pid_t pid() const override { return process_->pid; }
  std::optional<uint64_t> startTime() const override { return process_->start_time; }
  bool exited() const override { return process_->exited; }
  Status signal(int sig) override {
    if (process_->exited) return Error::fromErrno("signal worker " + std::to_string(process_->pid), ESRCH);
    process_->signals.push_back(sig);
    if (sig == SIGKILL || sig == SIGTERM) host_.exit(process_, WorkerExit{std::nullopt, sig});
    return {};
  }

 private:
  FakeWorkerHost& host_;
  std::shared_ptr<FakeProcess> process_;
};

}  // namespace

FakeWorkerHost::FakeWorkerHost(uv_loop_t* loop) : loop_(loop), pump_(makeUvHandle<uv_timer_t>()) {
  uv_timer_init(loop_, pump_.get());
  pump_->data = this;
}

void FakeWorkerHost::post(std::function<void()> action) {
  queue_.push_back(std::move(action));
  uv_timer_start(pump_.get(), [](uv_timer_t* timer) {
    auto* self = static_cast<FakeWorkerHost*>(timer->data);
    // What runs now may post more: post() restarts the timer, so that waits for the next turn.
    auto batch = std::exchange(self->queue_, {});
    for (auto& action : batch) action();
  }, 0, 0);
}

Result<std::unique_ptr<Worker>> FakeWorkerHost::spawn(const std::string& exe, const std::vector<std::string>& args,
                                                      const std::string& log_path, Worker::ExitCallback on_exit,
                                                      const std::vector<int>& pass_fds,
                                                      std::optional<WorkerIdentity> identity) {
  if (script.spawn_fails) return Error("spawn vmm: No such file or directory", ENOENT);
  auto process = std::make_shared<FakeProcess>();
  process->pid = next_pid_++;
  process->start_time = 1000 + static_cast<uint64_t>(process->pid);
  process->dir = dirOf(log_path);
  process->script = script;
  process->exe = script.execs.empty() ? exe : script.execs;
  process->args = args;
  if (identity) process->uid = identity->uid;
  // "-pidfile /proc/self/fd/N" names a file vmmd passed: the lock it takes is on that file.
  auto flag = std::find(args.begin(), args.end(), "-pidfile");
  if (flag != args.end() && flag + 1 != args.end()) {
    process->pidfile = *(flag + 1);
    constexpr std::string_view kPassed = "/proc/self/fd/";
    if (process->pidfile.starts_with(kPassed)) {
      size_t index = std::stoul(process->pidfile.substr(kPassed.size())) - kFirstPassedFd;
      std::error_code ec;
      if (index < pass_fds.size()) {
        process->pidfile = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(pass_fds[index]), ec).string();
      }
    }
  }
  process->on_exit = std::move(on_exit);
  if (!script.log_line.empty()) std::ofstream(log_path, std::ios::app) << script.log_line << "\n";
  processes_.push_back(process);
  if (script.exits_at_start) exit(process, WorkerExit{*script.exits_at_start, std::nullopt});
  return std::unique_ptr<Worker>(std::make_unique<FakeWorker>(*this, process));
}

std::shared_ptr<FakeProcess> FakeWorkerHost::addSurvivor(const FakeProcess& was, std::string status) {
  auto process = std::make_shared<FakeProcess>();
  process->pid = was.pid;
  process->start_time = was.start_time;
  process->dir = was.dir;
  process->exe = was.exe;
  process->args = was.args;
  process->uid = was.uid;
  process->pidfile = was.pidfile;
  process->holds_pidfile = was.holds_pidfile;
  process->status = std::move(status);
  survivors_[was.pid] = process;
  return process;
}

Result<ProcessFacts> FakeWorkerHost::inspect(pid_t pid) {
  std::shared_ptr<FakeProcess> found;
  if (auto it = survivors_.find(pid); it != survivors_.end()) found = it->second;
  for (const auto& process : processes_) {
    if (process->pid == pid) found = process;
  }
  if (!found || found->exited) return Error::fromErrno("open /proc/" + std::to_string(pid) + "/stat", ENOENT);
  const FakeProcess& p = *found;
  ProcessFacts facts{p.start_time, p.exe, {p.exe}, p.uid};
  facts.argv.insert(facts.argv.end(), p.args.begin(), p.args.end());
  return facts;
}

std::optional<pid_t> FakeWorkerHost::pidfileHolder(const std::string& pidfile) {
  for (const auto& [pid, process] : survivors_) {
    if (process->exited || !process->holds_pidfile) continue;
    if (process->pidfile == pidfile) return pid;
  }
  return std::nullopt;
}

Status FakeWorkerHost::killProcess(pid_t pid, uint64_t start_time) {
  auto it = survivors_.find(pid);
  if (it == survivors_.end() || it->second->exited || it->second->start_time != start_time) {
    return Error("process " + std::to_string(pid) + " is not the one inspected", ESRCH);
  }
  // Nobody watches it: it is simply gone (and its locks with it) once this returns.
  it->second->signals.push_back(SIGKILL);
  it->second->exited = true;
  return {};
}

void FakeWorkerHost::dropLink(const std::shared_ptr<FakeProcess>& process) {
  post([process] {
    if (!process->exited && process->link) process->link->dropped();
  });
}

Result<std::unique_ptr<Worker>> FakeWorkerHost::adopt(pid_t pid, uint64_t start_time, Worker::ExitCallback on_exit) {
  auto it = survivors_.find(pid);
  if (it == survivors_.end() || it->second->exited || it->second->start_time != start_time) {
    return Error::fromErrno("pidfd_open " + std::to_string(pid), ESRCH);
  }
  it->second->on_exit = std::move(on_exit);
  processes_.push_back(it->second);
  return std::unique_ptr<Worker>(std::make_unique<FakeWorker>(*this, it->second));
}

std::unique_ptr<WorkerLink> FakeWorkerHost::link() { return std::make_unique<FakeWorkerLink>(*this); }

void FakeWorkerHost::exit(const std::shared_ptr<FakeProcess>& process, WorkerExit how) {
  post([process, how] {
    if (process->exited) return;
    process->exited = true;
    if (process->link) process->link->dropped();
    if (auto on_exit = std::move(process->on_exit)) on_exit(how);
  });
}

void FakeWorkerHost::emit(const std::shared_ptr<FakeProcess>& process, const std::string& event, const std::string& data_json) {
  post([this, process, event, data_json] { deliver(*process, event, data_json); });
}

void FakeWorkerHost::deliver(FakeProcess& process, const std::string& event, const std::string& data_json) {
  if (process.exited || !process.link || !process.link->onEvent) return;
  qmp::Json message = object("{}");
  auto& a = message.GetAllocator();
  message.AddMember("event", qmp::jsonString(event, a), a);
  if (!data_json.empty()) message.AddMember("data", qmp::JsonValue(object(data_json), a), a);
  process.link->onEvent(message);
}

std::shared_ptr<FakeProcess> FakeWorkerHost::listeningAt(const std::string& socket_path) const {
  std::string dir = dirOf(socket_path);
  for (auto it = processes_.rbegin(); it != processes_.rend(); ++it) {
    if ((*it)->dir == dir && !(*it)->exited) return *it;
  }
  return nullptr;
}

qmp::CommandResult FakeWorkerHost::answer(const std::shared_ptr<FakeProcess>& process, const std::string& command) {
  const auto& refuses = process->script.refuses;
  if (std::find(refuses.begin(), refuses.end(), command) != refuses.end()) {
    return qmp::QmpError::generic("fake worker refuses " + command);
  }
  if (command == "query-status") {
    return object(R"({"status": ")" + process->status + R"(", "running": )" + (process->status == "running" ? "true" : "false") + "}");
  }
  if (command == "cont") {
    process->status = "running";
    deliver(*process, "RESUME", "");
  } else if (command == "stop") {
    process->status = "paused";
    deliver(*process, "STOP", "");
  } else if (command == "system_reset") {
    deliver(*process, "RESET", R"({"guest": false, "reason": "host-qmp-system-reset"})");
  } else if (command == "system_powerdown") {
    deliver(*process, "POWERDOWN", "");
    if (process->script.powers_off_on_button) {
      emit(process, "SHUTDOWN", R"({"guest": true, "reason": "guest-shutdown"})");
      exit(process, WorkerExit{0, std::nullopt});
    }
  } else if (command == "quit") {
    deliver(*process, "SHUTDOWN", R"({"guest": false, "reason": "host-qmp-quit"})");
    exit(process, WorkerExit{0, std::nullopt});
  } else {
    return qmp::QmpError{"CommandNotFound", "The command " + command + " has not been found"};
  }
  return qmp::jsonObject();
}

FakeWorkerLink::~FakeWorkerLink() { close(); }

void FakeWorkerLink::connect(const std::string& socket_path, std::function<void(Status)> done) {
  connect_done_ = std::move(done);
  host_.post([this, alive = std::weak_ptr<int>(alive_), socket_path] {
    if (alive.expired() || !connect_done_) return;
    auto process = host_.listeningAt(socket_path);
    if (process) ++process->connects;
    if (process && process->refuse_connects > 0) {
      --process->refuse_connects;
      return std::exchange(connect_done_, nullptr)(Error::fromErrno("connect " + socket_path, ECONNREFUSED));
    }
    if (!process) return std::exchange(connect_done_, nullptr)(Error::fromErrno("connect " + socket_path, ECONNREFUSED));
    if (!process->script.greets) {
      // A hung worker: the connection is queued, no greeting ever comes. Its exit still ends it.
      process_ = process;
      process->link = this;
      return;
    }
    process_ = process;
    process->link = this;
    std::exchange(connect_done_, nullptr)(Status{});
  });
}

void FakeWorkerLink::execute(std::string_view command, const qmp::JsonValue*, ReplyCallback callback) {
  uint64_t id = next_id_++;
  pending_[id] = std::move(callback);
  if (process_) process_->commands.emplace_back(command);
  if (!process_ || !process_->script.answers) return;
  host_.post([this, alive = std::weak_ptr<int>(alive_), id, command = std::string(command)] {
    if (alive.expired() || !process_ || process_->exited) return;
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    auto callback = std::move(it->second);
    pending_.erase(it);
    callback(host_.answer(process_, command));
  });
}

void FakeWorkerLink::close() {
  pending_.clear();
  connect_done_ = nullptr;
  if (process_ && process_->link == this) process_->link = nullptr;
  process_.reset();
}

void FakeWorkerLink::dropped() {
  Error why("connection closed by the worker", ECONNRESET);
  bool was_open = process_ != nullptr && !connect_done_;
  auto pending = std::exchange(pending_, {});
  auto connect_done = std::exchange(connect_done_, nullptr);
  if (process_ && process_->link == this) process_->link = nullptr;
  process_.reset();
  if (connect_done) connect_done(why);
  for (auto& [id, callback] : pending) callback(why);
  if (was_open && onDisconnect) onDisconnect(why);
}

}  // namespace vmmd::daemon::testing
