// The worker process around one Machine: the libuv main loop, chardevs, run state, and what to do
// when the guest powers off, resets or fails. vCPU threads only post requests here; every
// decision is taken on the main loop thread.
#pragma once

#include <uv.h>

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/uv_handle.h"
#include "vmm/chardev/chardev.h"
#include "vmm/config/machine_config.h"
#include "vmm/machine/machine.h"
#include "vmm/monitor/qmp_monitor.h"

namespace vmmd {

// QEMU's RunState names (qapi/run-state.json), as query-status reports them.
enum class RunState { Prelaunch, Running, Paused, Shutdown, InternalError };
const char* runStateName(RunState state);

class Worker {
 public:
  explicit Worker(config::MachineConfig config);
  ~Worker();

  // Builds chardevs and the machine and powers it on (or parks it for -S).
  Status start();
  // Runs the main loop until the worker should exit; returns the process exit status.
  int run();

  RunState state() const { return state_; }
  Machine& machine() { return *machine_; }
  const config::MachineConfig& config() const { return config_; }

  // Host-initiated actions (QMP and signals use these); each emits QEMU's events.
  void stop();        // running -> paused
  Status cont();      // paused/prelaunch -> running
  void powerButton();
  Status systemReset();
  // QMP quit: the reply goes out first, then the process exits 0.
  void requestQuit();
  void quit(int exit_status, const std::string& why);

  struct ChardevInfo {
    std::string label;
    std::string filename;
    bool open;
  };
  std::vector<ChardevInfo> chardevInfo() const;

 private:
  enum class EventKind { Power, Fatal };
  struct Event {
    EventKind kind;
    PowerRequest power;
    std::string text;
  };
  void post(Event event);    // any thread
  void drainEvents();        // main loop thread
  void handlePower(PowerRequest request);

  config::MachineConfig config_;
  uv_loop_t loop_{};
  std::map<std::string, std::unique_ptr<Chardev>> chardevs_;
  std::map<std::string, std::string> port_paths_;
  std::unique_ptr<QmpMonitor> monitor_;
  std::unique_ptr<Machine> machine_;
  UvHandle<uv_timer_t> quit_timer_;
  RunState state_ = RunState::Prelaunch;
  std::optional<int> exit_status_;

  struct FdWatch {
    UvHandle<uv_poll_t> poll;
    std::function<void()> on_readable;
  };
  std::vector<std::unique_ptr<FdWatch>> fd_watches_;
  UvHandle<uv_async_t> events_async_;
  UvHandle<uv_signal_t> sigterm_, sigint_, sighup_;
  std::mutex events_mutex_;
  std::deque<Event> events_;
};

}  // namespace vmmd
