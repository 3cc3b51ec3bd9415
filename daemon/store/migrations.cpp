#include "daemon/store/migrations.h"

#include <array>

namespace vmmd::daemon {
namespace {

// STRICT tables: SQLite refuses a value of the wrong type instead of storing it.
constexpr std::string_view kVersion1 = R"sql(
CREATE TABLE definitions (
  name       TEXT PRIMARY KEY NOT NULL,
  uuid       TEXT NOT NULL UNIQUE,
  json       TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL
) STRICT;

CREATE TABLE runtime (
  name           TEXT PRIMARY KEY NOT NULL REFERENCES definitions(name) ON DELETE CASCADE,
  state          TEXT NOT NULL,
  pid            INTEGER,
  start_time     INTEGER,
  started_us     INTEGER,
  qmp_socket     TEXT,
  console_socket TEXT,
  qga_socket     TEXT,
  exit_status    INTEGER,
  exit_signal    INTEGER,
  restart_count  INTEGER NOT NULL DEFAULT 0,
  updated_us     INTEGER NOT NULL
) STRICT;

-- No foreign key: the history of a VM outlives its definition.
CREATE TABLE events (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  time_us INTEGER NOT NULL,
  vm      TEXT NOT NULL,
  kind    TEXT NOT NULL,
  detail  TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_vm ON events(vm, id);
)sql";

// A stop in progress is committed before the signal or power button that carries it out, so a
// vmmd killed in between finishes it after a restart (a shutdown keeps its deadline; a destroy is
// never mistaken for a crash). The boot id, with pid and start time, identifies the worker.
constexpr std::string_view kVersion2 = R"sql(
ALTER TABLE runtime ADD COLUMN stop_intent TEXT;
ALTER TABLE runtime ADD COLUMN stop_deadline_us INTEGER;
ALTER TABLE runtime ADD COLUMN stop_timeout_s INTEGER;
ALTER TABLE runtime ADD COLUMN stop_force INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runtime ADD COLUMN boot_id TEXT;
ALTER TABLE runtime ADD COLUMN worker_exe TEXT;
)sql";

// Each VM belongs to the client that defined it (SO_PEERCRED uid and gid, SO_PEERGROUPS groups as
// "10,27,4242"): its files are opened with those credentials and only it and root may act on the VM.
// Definitions made before owners were recorded belong to root (the defaults).
constexpr std::string_view kVersion3 = R"sql(
ALTER TABLE definitions ADD COLUMN owner_uid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE definitions ADD COLUMN owner_gid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE definitions ADD COLUMN owner_groups TEXT NOT NULL DEFAULT '';
)sql";

// Networks (issue 16): each definition (canonical JSON, autostart inside it) and what vmmd made
// for it while active: whether the bridge is its own (so net-stop removes only that), and the
// dnsmasq it runs (pid + start time, to re-adopt it after a restart and never start a second).
// A static DHCP lease per VM NIC, allocated once and kept, so a VM keeps its address for life.
constexpr std::string_view kVersion4 = R"sql(
CREATE TABLE networks (
  name               TEXT PRIMARY KEY NOT NULL,
  json               TEXT NOT NULL,
  active             INTEGER NOT NULL DEFAULT 0,
  created_bridge     INTEGER NOT NULL DEFAULT 0,
  dnsmasq_pid        INTEGER,
  dnsmasq_start_time INTEGER,
  updated_us         INTEGER NOT NULL
) STRICT;

CREATE TABLE network_leases (
  network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
  mac     TEXT NOT NULL,
  vm      TEXT NOT NULL,
  ipv4    TEXT NOT NULL,
  PRIMARY KEY (network, mac),
  UNIQUE (network, ipv4)
) STRICT;
)sql";

// Snapshots of a VM (vmctl snapshot): the qcow2 internal snapshot named `tag` on each disk listed
// in `disks` (their ids, comma-separated) and the guest's memory and device state, written by its
// worker as a migration stream to `state_file`. They go with the VM's definition.
constexpr std::string_view kVersion5 = R"sql(
CREATE TABLE snapshots (
  vm          TEXT NOT NULL REFERENCES definitions(name) ON DELETE CASCADE,
  tag         TEXT NOT NULL,
  created_us  INTEGER NOT NULL,
  state_file  TEXT NOT NULL,
  state_bytes INTEGER NOT NULL,
  disks       TEXT NOT NULL,
  PRIMARY KEY (vm, tag)
) STRICT;

-- A VM defined here by an incoming migration that has not arrived yet: a vmmd restarted before it
-- arrived drops it (its source still runs it).
ALTER TABLE definitions ADD COLUMN arriving INTEGER NOT NULL DEFAULT 0;
)sql";

constexpr std::array<Migration, 5> kMigrations = {{
    {1, "definitions, runtime state, event history", kVersion1},
    {2, "stop intents and their deadlines, the worker's boot id and binary", kVersion2},
    {3, "the owner of each VM (uid, gid, groups)", kVersion3},
    {4, "networks and their static DHCP leases", kVersion4},
    {5, "snapshots (disk snapshot tag, state file) per VM; VMs still arriving by migration", kVersion5},
}};

}  // namespace

std::span<const Migration> storeMigrations() { return kMigrations; }
int latestStoreVersion() { return kMigrations.back().version; }

}  // namespace vmmd::daemon
