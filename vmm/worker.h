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
#include "vmm/backends/chardev.h"
#include "vmm/backends/fd_sets.h"
#include "vmm/config/machine_config.h"
#include "vmm/devices/device_host.h"
#include "vmm/machine/machine.h"
#include "vmm/migration/migration_host.h"
#include "vmm/migration/migration_manager.h"
#include "vmm/monitor/monitored_vm.h"
#include "vmm/monitor/qmp_monitor.h"

namespace vmmd {

class Worker : public MonitoredVm, public DeviceHost, public migration::MigrationHost {
 public:
  // `fd_sets`: the descriptors passed with -add-fd; every file the worker opens by path goes through them.
  Worker(config::MachineConfig config, FdSets fd_sets);
  ~Worker() override;

  // Builds chardevs and the machine and powers it on (or parks it for -S).
  Status start();
  // Runs the main loop until the worker should exit; returns the process exit status.
  int run();

  void quit(int exit_status, const std::string& why);

  // MonitoredVm (QMP and signals use these)
  RunState state() const override { return state_; }
  const config::MachineConfig& config() const override { return config_; }
  Machine& machine() override { return *machine_; }
  std::vector<ChardevInfo> chardevInfo() const override;
  void stop() override;
  Status cont() override;
  void powerButton() override;
  Status systemReset() override;
  void requestQuit() override;
  migration::MigrationManager& migration() override { return *migration_; }

  // MigrationHost (the migration threads use these, through the main loop)
  void runOnLoop(std::function<void()> task) override;
  void migrationEvent(std::string_view name, const qmp::JsonValue& data) override;
  void stopForCompletion(std::function<void(Result<MachineState>)> done) override;
  void outgoingEnded(bool completed) override;
  Status incomingLoaded(const MachineState& state) override;
  void incomingFailed(const std::string& why) override;

  // DeviceHost (the machine's devices use these)
  void watchFd(int fd, std::function<void()> on_readable) override;
  void runIo(std::function<void()> work, std::function<void()> done) override;
  Result<std::unique_ptr<virtio::PortBackend>> openPort(const std::string& chardev_id) override;
  Result<std::unique_ptr<virtio::NetBackend>> openNetdev(const config::NetdevConfig& netdev) override;
  const FileOpener& files() const override { return fd_sets_; }
  void powerRequest(PowerRequest request) override;
  void vcpuFailed(const std::string& report) override;
  void serialOutput(std::span<const uint8_t> bytes) override;
  void blockIoError(const std::string& device, const std::string& operation, const std::string& reason) override;
  void portChanged(const std::string& port_id, bool open) override;

 private:
  enum class EventKind { Power, Fatal, Task };
  struct Event {
    EventKind kind;
    PowerRequest power;
    std::string text;
    std::function<void()> task = {};
  };
  // The source's final pass: device I/O drained, then the state saved (or the guest resumed
  // when the migration ended meanwhile).
  void finishStopWhenDrained();
  void resumeAfterMigration();
  // quit() from a timer `delay_ms` later: replies and events in flight go out first.
  void quitLater(int exit_status, uint64_t delay_ms, std::string why);
  Status enterSandbox();     // -sandbox on: filters installed, the I/O pool started
  void post(Event event);    // any thread
  void drainEvents();        // main loop thread
  void handlePower(PowerRequest request);
  void writeExitStats() const;
  static constexpr size_t kExitStatsTopAddresses = 32;

  config::MachineConfig config_;
  FdSets fd_sets_;
  uv_loop_t loop_{};
  std::map<std::string, std::unique_ptr<Chardev>> chardevs_;
  std::map<std::string, std::string> socket_paths_;  // where each monitor's and port's socket is bound
  Chardev* console_ = nullptr;  // COM1's host end, if any
  virtio::VirtioBlk::Executor io_executor_;
  std::unique_ptr<QmpMonitor> monitor_;
  std::unique_ptr<Machine> machine_;
  // After machine_: destroyed first, its thread joined while the machine still exists.
  std::unique_ptr<migration::MigrationManager> migration_;
  bool autostart_ = true;  // destination: run once loaded (-S, or stop/cont while inmigrate)
  // Source's final pass: the state it was in before (to go back to if the migration fails),
  // whether device I/O is stopped, the stop in progress and whether to give up on it.
  RunState state_before_stop_ = RunState::Running;
  bool device_io_stopped_ = false;
  std::function<void(Result<MachineState>)> stop_done_;
  bool abandon_stop_ = false;
  UvHandle<uv_timer_t> drain_timer_;
  UvHandle<uv_timer_t> quit_timer_;
  int quit_status_ = 0;
  std::string quit_why_;
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
