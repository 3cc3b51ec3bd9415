// The source side of a live migration, on its own thread: connect, send every page, then the
// pages dirtied meanwhile in passes until what remains fits downtime-limit at the measured
// bandwidth, then stop the guest, send the rest and the machine state, and end the stream.
// A guest that dirties memory faster than the link can carry fails the migration after
// kMaxPasses passes with the reason; the guest keeps running on the source.
#pragma once

#include "vmm/migration/migration_manager.h"
#include "vmm/migration/migration_uri.h"

namespace vmmd::migration {

inline constexpr uint32_t kMaxPasses = 30;

// The thread's body; reports through `manager` until the status is completed, failed or cancelled.
void runOutgoing(MigrationManager& manager, MigrationUri uri);

}  // namespace vmmd::migration
