// The supervisor's answers on the wire: VmError kinds as QMP error classes, domain values as the
// QMP "return" documents of the control commands.
#pragma once

#include <vector>

#include "daemon/supervisor/supervisor.h"
#include "qmp/command_registry.h"

namespace vmmd::daemon {

// DeviceNotFound for a VM that is not defined, DeviceNotActive for an agent that does not answer,
// the worker's own class for its errors, GenericError for the rest. The message is kept.
qmp::QmpError toQmpError(const VmError& error);

qmp::Json toJson(const Done&);
qmp::Json toJson(const DefinedVm& vm);
qmp::Json toJson(const std::vector<VmSummary>& rows);
qmp::Json toJson(const VmDetails& details);
qmp::Json toJson(const StopOutcome& outcome);
qmp::Json toJson(const DomainXml& xml);  // {"xml": text}
qmp::Json toJson(const SnapshotRecord& snapshot);
qmp::Json toJson(const std::vector<SnapshotRecord>& snapshots);
qmp::Json toJson(const MigrationOutcome& outcome);
qmp::Json toJson(const IncomingEndpoint& endpoint);
inline qmp::Json toJson(qmp::Json&& value) { return std::move(value); }

template <typename T>
qmp::CommandResult toCommandResult(VmResult<T>&& result) {
  if (!result) return toQmpError(result.error());
  return toJson(std::move(*result));
}

}  // namespace vmmd::daemon
