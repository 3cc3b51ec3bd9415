// A scripted stand-in for vmm workers, for driving the supervisor on a real libuv loop without
// processes or sockets: FakeWorkerHost spawns and adopts FakeProcesses, and its links speak to
// them. A fake process greets, answers query-status / cont / stop / system_powerdown /
// system_reset / quit as a worker does (with STOP, RESUME, SHUTDOWN, RESET events), and exits when
// killed, when the test says so, or when its script says so. Everything it does reaches the
// supervisor through the loop (a zero timer), never from inside the supervisor's own call.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/uv_handle.h"
#include "daemon/supervisor/worker.h"

namespace vmmd::daemon::testing {

class FakeWorkerLink;

// How the next spawned worker behaves.
struct FakeWorkerScript {
  bool spawn_fails = false;             // the spawn itself fails (no process)
  std::optional<int64_t> exits_at_start;  // exits with this status before greeting
  std::string log_line;                 // written to its log at spawn (its reason when it fails)
  bool greets = true;                   // false: hung, never completes the QMP greeting
  bool answers = true;                  // false: takes commands, never replies
  bool powers_off_on_button = true;     // system_powerdown: SHUTDOWN (guest) and exit 0
  std::vector<std::string> refuses;     // commands answered with a GenericError
  std::string execs;                    // the spawned binary is a wrapper that execs this one
};

struct FakeProcess {
  pid_t pid = 0;
  uint64_t start_time = 0;
  std::string dir;  // the VM's run directory: its links connect to sockets in it
  FakeWorkerScript script;
  std::string status = "prelaunch";  // query-status
  std::string exe;                   // what /proc/PID/exe would say
  std::vector<std::string> args;
  std::optional<uid_t> uid;          // the identity it was spawned with, as /proc/PID/status says
  std::string pidfile;               // the file its -pidfile names (a passed fd resolved)
  bool holds_pidfile = true;          // while it runs, it holds the lock on its -pidfile
  int refuse_connects = 0;            // this many connects are refused (ECONNREFUSED) first
  int connects = 0;                   // connects tried
  std::vector<std::string> commands;  // every QMP command received, in order
  std::vector<int> signals;           // every signal received
  bool exited = false;
  Worker::ExitCallback on_exit;      // while the supervisor watches it
  FakeWorkerLink* link = nullptr;    // while a link is connected to it
};

class FakeWorkerHost : public WorkerHost {
 public:
  explicit FakeWorkerHost(uv_loop_t* loop);

  Result<std::unique_ptr<Worker>> spawn(const std::string& exe, const std::vector<std::string>& args,
                                        const std::string& log_path, Worker::ExitCallback on_exit,
                                        const std::vector<int>& pass_fds,
                                        std::optional<WorkerIdentity> identity) override;
  Result<std::unique_ptr<Worker>> adopt(pid_t pid, uint64_t start_time, Worker::ExitCallback on_exit) override;
  std::unique_ptr<WorkerLink> link() override;
  std::string bootId() override { return boot_id; }
  Result<ProcessFacts> inspect(pid_t pid) override;
  std::optional<pid_t> pidfileHolder(const std::string& pidfile) override;
  Status killProcess(pid_t pid, uint64_t start_time) override;

  // This fake machine's boot.
  std::string boot_id = "boot-1";
  // For the next spawns.
  FakeWorkerScript script;
  // Every process spawned or adopted, oldest first.
  const std::vector<std::shared_ptr<FakeProcess>>& processes() const { return processes_; }
  std::shared_ptr<FakeProcess> last() const { return processes_.empty() ? nullptr : processes_.back(); }

  // A worker that outlived the previous vmmd (one the previous host spawned), for inspect() and
  // adopt(); its QMP socket in the same dir.
  std::shared_ptr<FakeProcess> addSurvivor(const FakeProcess& was, std::string status);
  // The process drops its QMP client (as a worker does with one whose backlog grew too large)
  // and keeps running.
  void dropLink(const std::shared_ptr<FakeProcess>& process);
  // The process ends (through the loop): its link is dropped, then its watcher is told.
  void exit(const std::shared_ptr<FakeProcess>& process, WorkerExit how);
  // The process sends a QMP event (through the loop).
  void emit(const std::shared_ptr<FakeProcess>& process, const std::string& event, const std::string& data_json = "");

  // Runs `action` from the loop, after what is already queued.
  void post(std::function<void()> action);
  // The live process whose QMP socket is `socket_path`.
  std::shared_ptr<FakeProcess> listeningAt(const std::string& socket_path) const;
  // A command's effect and answer, as a worker gives them; events go out at once (as QEMU sends
  // RESUME before cont's return), exits through the loop.
  qmp::CommandResult answer(const std::shared_ptr<FakeProcess>& process, const std::string& command);
  void deliver(FakeProcess& process, const std::string& event, const std::string& data_json);

 private:
  uv_loop_t* loop_;
  UvHandle<uv_timer_t> pump_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::shared_ptr<FakeProcess>> processes_;
  std::map<pid_t, std::shared_ptr<FakeProcess>> survivors_;
  pid_t next_pid_ = 4000000;  // beyond pid_max's default: no real process has it
};

class FakeWorkerLink : public WorkerLink {
 public:
  explicit FakeWorkerLink(FakeWorkerHost& host) : host_(host) {}
  ~FakeWorkerLink() override;

  void connect(const std::string& socket_path, std::function<void(Status)> done) override;
  void execute(std::string_view command, const qmp::JsonValue* args, ReplyCallback callback) override;
  void close() override;

  // The process it is connected to ended: the socket closes.
  void dropped();

 private:
  FakeWorkerHost& host_;
  std::shared_ptr<FakeProcess> process_;  // once connected
  std::function<void(Status)> connect_done_;
  std::map<uint64_t, ReplyCallback> pending_;  // as a QMP client: dropped by close, failed by a lost socket
  uint64_t next_id_ = 1;
  // Expires with the link: what the loop delivers later checks it first.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace vmmd::daemon::testing
