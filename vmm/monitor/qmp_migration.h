// QMP's migration commands and events as QEMU 7.2 has them (qapi/migration.json): migrate,
// migrate-incoming, migrate_cancel, query-migrate, migrate-set-capabilities,
// query-migrate-capabilities, migrate-set-parameters, query-migrate-parameters; the MIGRATION and
// MIGRATION_PASS events. They act on the worker's MigrationManager.
#pragma once

#include "qmp/command_registry.h"
#include "vmm/migration/migration_manager.h"

namespace vmmd {

class MonitoredVm;

void registerMigrationCommands(qmp::CommandRegistry& registry, MonitoredVm& vm);

// query-migrate's answer for `info` (QEMU's MigrationInfo: {} before any migration).
qmp::Json migrationInfoJson(const migration::MigrationInfo& info);

}  // namespace vmmd
