// The worker's QMP monitors: one command registry with QEMU's commands (names, arguments, reply
// shapes and errors as QEMU 7.2), served on every -qmp / -mon socket, and the events QEMU sends
// (SHUTDOWN, POWERDOWN, RESET, STOP, RESUME) broadcast to all of them.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "qmp/command_registry.h"
#include "qmp/uv_server.h"
#include "vmm/config/machine_config.h"

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

  uv_loop_t* loop_;
  MonitoredVm& vm_;
  qmp::CommandRegistry registry_;
  std::vector<std::unique_ptr<qmp::UvServer>> servers_;
};

// {"qemu": {"micro": ..., "minor": ..., "major": ...}, "package": ...} as JSON text.
std::string qmpVersionJson();

}  // namespace vmmd
