// What the QMP monitor drives: the run state and the host-initiated actions of one guest. The
// worker implements it, so the monitor depends on this interface and never on the worker.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/config/machine_config.h"
#include "vmm/machine/machine.h"
#include "vmm/migration/migration_manager.h"

namespace vmmd {

// QEMU's RunState names (qapi/run-state.json), as query-status reports them.
enum class RunState { Prelaunch, Running, Paused, Shutdown, InternalError, Inmigrate, FinishMigrate, Postmigrate };

inline const char* runStateName(RunState state) {
  switch (state) {
    case RunState::Prelaunch: return "prelaunch";
    case RunState::Running: return "running";
    case RunState::Paused: return "paused";
    case RunState::Shutdown: return "shutdown";
    case RunState::InternalError: return "internal-error";
    case RunState::Inmigrate: return "inmigrate";
    case RunState::FinishMigrate: return "finish-migrate";
    case RunState::Postmigrate: return "postmigrate";
  }
  return "unknown";
}

// One row of query-chardev.
struct ChardevInfo {
  std::string label;
  std::string filename;
  bool open;
};

class MonitoredVm {
 public:
  virtual ~MonitoredVm() = default;

  virtual RunState state() const = 0;
  virtual const config::MachineConfig& config() const = 0;
  virtual Machine& machine() = 0;
  virtual std::vector<ChardevInfo> chardevInfo() const = 0;
  virtual migration::MigrationManager& migration() = 0;

  // Host-initiated actions; each emits QEMU's events.
  virtual void stop() = 0;        // running -> paused
  virtual Status cont() = 0;      // paused/prelaunch -> running
  virtual void powerButton() = 0;
  virtual Status systemReset() = 0;
  // QMP quit: the reply goes out first, then the process exits 0.
  virtual void requestQuit() = 0;
};

}  // namespace vmmd
