// The source side of a migration to another vmmd (vm-migrate): the control connection to the
// destination vmmd, the poll of the worker's query-migrate, and what vm-migrate-status shows.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/uv_handle.h"
#include "base/migration_destination.h"
#include "daemon/remote/ssh_link.h"
#include "qmp/json.h"
#include "qmp/uv_client.h"

namespace vmmd::daemon {

struct OutgoingMigration {
  std::string destination;  // the destination vmmd: its control socket or ssh://USER@HOST (display form)
  std::optional<SshDestination> ssh;  // set when it is reached through ssh
  // The ssh processes carrying the control connection and the migration stream (ssh only);
  // destroying them ends them.
  std::unique_ptr<SshLink> control_link;
  std::unique_ptr<SshLink> stream_link;
  std::string phase = "connecting";  // connecting, preparing, active, committing, cleaning-up
  bool was_running = true;  // the guest ran when the migration began (it runs again on failure)
  bool cancel_requested = false;
  std::unique_ptr<qmp::UvClient> peer;  // the control connection to the destination vmmd
  UvHandle<uv_timer_t> poll_timer;
  std::function<void()> on_poll;
  qmp::Json last_status = qmp::jsonObject();  // the worker's last query-migrate answer
};

}  // namespace vmmd::daemon
