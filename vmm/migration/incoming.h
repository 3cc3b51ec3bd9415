// The destination side, on its own thread: wait for the source (unix, tcp) or read the given
// descriptor or command (fd, exec), load the stream into guest RAM, then hand the machine state
// to the main loop, which applies it and starts the guest. A stream that is damaged, truncated or
// from a machine that does not match fails with the reason; the guest never runs.
#pragma once

#include "vmm/migration/migration_manager.h"
#include "vmm/migration/migration_uri.h"

namespace vmmd::migration {

// The listening socket or stream is opened by the caller (so a bad URI or a taken port is a
// synchronous error); the thread takes it from there.
void runIncoming(MigrationManager& manager, IncomingEndpoint endpoint);

}  // namespace vmmd::migration
