// The worker's QMP monitors: one command registry with QEMU's commands (names, arguments, reply
// shapes and errors as QEMU 7.2), served on every -qmp / -mon socket, and the events QEMU sends
// (SHUTDOWN, POWERDOWN, RESET, STOP, RESUME) broadcast to all of them, the guest-triggerable
// ones rate-limited as QEMU does (EventThrottle).
#pragma once

#include <uv.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/uv_handle.h"
#include "qmp/command_registry.h"
#include "qmp/uv_server.h"
#include "vmm/config/machine_config.h"
#include "vmm/monitor/event_throttle.h"

namespace vmmd {

class MonitoredVm;

// The version vmm reports to QMP clients: QEMU's API level it implements, and itself as the package.
constexpr int kQemuCompatMajor = 7, kQemuCompatMinor = 2, kQemuCompatMicro = 0;
constexpr const char* kVmmPackage = "vmm-0.1.0";

class QmpMonitor {
 public:
  QmpMonitor(uv_loop_t* loop, MonitoredVm& vm);
  ~QmpMonitor();

  // One server per -qmp/-mon socket chardev: bound at its path=, or the listening socket its fd=
  // names (passed open by vmmd, which then never waits for the socket to appear).
  Status listen(const config::ChardevConfig& chardev, bool pretty);
  void event(std::string_view name, const qmp::JsonValue* data = nullptr);
  // SHUTDOWN/RESET carry {"guest": bool, "reason": ShutdownCause}.
  void causeEvent(std::string_view name, bool guest, std::string_view reason);
  void close();

  const qmp::CommandRegistry& registry() const { return registry_; }

 private:
  void registerSchema();
  void registerCommands();
  std::string humanCommand(const std::string& line);

  // One timer per open throttle window (EventThrottle): at most one per event kind and key.
  struct ThrottleWindow {
    QmpMonitor* monitor;
    std::string key;
    std::chrono::milliseconds period;
    UvHandle<uv_timer_t> timer;
  };
  void broadcast(const std::string& line);
  void openThrottleWindow(const std::string& key, std::chrono::milliseconds period);
  void throttleWindowEnded(const std::string& key);

  uv_loop_t* loop_;
  MonitoredVm& vm_;
  EventThrottle throttle_;
  std::map<std::string, std::unique_ptr<ThrottleWindow>> throttle_windows_;
  qmp::CommandRegistry registry_;
  std::vector<std::unique_ptr<qmp::UvServer>> servers_;
};

// {"qemu": {"micro": ..., "minor": ..., "major": ...}, "package": ...} as JSON text.
std::string qmpVersionJson();

}  // namespace vmmd
