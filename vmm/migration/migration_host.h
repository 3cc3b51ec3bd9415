// What a migration needs from the worker around the machine. The worker implements it; the
// migration code runs on its own threads and reaches the main loop only through runOnLoop().
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "qmp/json.h"
#include "vmm/config/machine_config.h"
#include "vmm/machine/machine.h"

namespace vmmd::migration {

class MigrationHost {
 public:
  virtual ~MigrationHost() = default;

  virtual Machine& machine() = 0;
  virtual const config::MachineConfig& config() const = 0;
  // Runs `task` on the main loop thread, in the order posted (any thread). Tasks posted after the
  // worker began to exit never run.
  virtual void runOnLoop(std::function<void()> task) = 0;

  // The rest run on the main loop thread.
  virtual void migrationEvent(std::string_view name, const qmp::JsonValue& data) = 0;
  // Source, final pass: stop the guest (vCPUs parked, device I/O stopped and drained) and save
  // its state; `done` gets the state or why not (then the guest already runs again).
  virtual void stopForCompletion(std::function<void(Result<MachineState>)> done) = 0;
  // Source: the migration ended. Completed: the guest stays stopped (postmigrate); otherwise it
  // runs again if it ran before.
  virtual void outgoingEnded(bool completed) = 0;
  // Destination: the whole stream arrived. Loads the state and starts the guest (unless -S);
  // an error leaves it stopped.
  virtual Status incomingLoaded(const MachineState& state) = 0;
  // Destination: the stream could not be loaded; the guest never runs.
  virtual void incomingFailed(const std::string& why) = 0;
};

}  // namespace vmmd::migration
