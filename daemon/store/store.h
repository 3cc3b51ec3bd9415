// vmmd's persistent state in one SQLite file: VM definitions, each VM's runtime record and the
// event history. Every change is one transaction, including the event row that records it.
//
// Durability: WAL with synchronous=FULL. In WAL mode a committed transaction is in the WAL file
// (the OS page cache) before COMMIT returns, so it survives a kill -9 of vmmd even with NORMAL;
// FULL adds an fsync of the WAL at every commit so it also survives a power loss or kernel crash.
// vmmd acknowledges a define only after the commit, and changes are rare (defines, state changes),
// so the ~2 ms fsync per change is worth "acknowledged means on disk".
//
// Safety: open() refuses — and never writes to — a file that is not an SQLite database, a corrupt
// one, another program's database (application_id / foreign tables) or one from a newer vmmd.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "daemon/definition/vm_definition.h"
#include "daemon/store/records.h"
#include "daemon/store/sqlite.h"

namespace vmmd::daemon {

struct StoreOptions {
  int busy_timeout_ms = 5000;  // another process (a backup, sqlite3 CLI) holding a lock
  int64_t max_events = 100000;  // oldest events are dropped beyond this many
};

// Error::code() of the store's refusals, so that callers branch on the case, never on the text.
inline constexpr int kStoreNotDefined = ENOENT;    // no VM of that name
inline constexpr int kStoreNameTaken = EEXIST;     // define: the name is in use
inline constexpr int kStoreUuidTaken = EADDRINUSE; // define: the uuid is in use

class Store {
 public:
  // Opens or creates the database and brings its schema up to date.
  static Result<Store> open(const std::string& path, StoreOptions options = {});

  // A new VM, owned by `owner`. Fails when the name or the uuid is taken: "vm 'web1' is already defined".
  Status define(const VmDefinition& def, const Owner& owner = Owner::root());
  // Removes the definition and the runtime record; the event history stays.
  Status undefine(std::string_view name);
  Result<std::optional<StoredDefinition>> definition(std::string_view name);
  // Sorted by name.
  Result<std::vector<StoredDefinition>> definitions();

  // Inserts or replaces the runtime record of a defined VM, with an optional event, atomically.
  Status saveRuntime(const RuntimeRecord& record, const std::optional<EventDraft>& event = std::nullopt);
  Result<std::optional<RuntimeRecord>> runtime(std::string_view name);
  Result<std::vector<RuntimeRecord>> runtimes();

  // A new snapshot of a defined VM, with a "snapshot" event; EEXIST (kStoreNameTaken) when the
  // VM has one with that tag.
  Status addSnapshot(const SnapshotRecord& snapshot);
  // Oldest first.
  Result<std::vector<SnapshotRecord>> snapshots(std::string_view vm);
  Result<std::optional<SnapshotRecord>> snapshot(std::string_view vm, std::string_view tag);
  // ENOENT (kStoreNotDefined) when there is no such snapshot.
  Status removeSnapshot(std::string_view vm, std::string_view tag);

  // Marks a VM as defined by an incoming migration that has not completed (or clears the mark).
  Status setArriving(std::string_view vm, bool arriving);
  // VMs whose incoming migration never completed, by name.
  Result<std::vector<std::string>> arrivingVms();

  Result<int64_t> appendEvent(std::string_view vm, const EventDraft& event);
  // Oldest first.
  Result<std::vector<EventRecord>> events(const EventQuery& query = {});

  // Networks (store_networks.cpp). defineNetwork fails with kStoreNameTaken when the name is taken.
  Status defineNetwork(const std::string& name, const std::string& json);
  // Replaces the JSON of a defined network (net-autostart).
  Status updateNetworkJson(const std::string& name, const std::string& json);
  // Removes the network and its leases.
  Status undefineNetwork(const std::string& name);
  // The state columns (active, created_bridge, dnsmasq pid and start time) of a defined network.
  Status saveNetworkState(const StoredNetwork& state);
  Result<std::optional<StoredNetwork>> network(const std::string& name);
  // Sorted by name.
  Result<std::vector<StoredNetwork>> networks();
  Result<std::vector<NetworkLease>> networkLeases(const std::string& network);
  // Fails (kStoreNameTaken) when the MAC or the address already has a lease on that network.
  Status addNetworkLease(const NetworkLease& lease);
  // Drops every lease of `vm`; returns the networks that had one.
  Result<std::vector<std::string>> dropVmLeases(const std::string& vm);

  const std::string& path() const { return db_.path(); }
  // For tests and diagnostics: PRAGMA integrity_check; "ok" when sound.
  Result<std::string> integrityCheck();

 private:
  Store(sqlite::Database db, StoreOptions options) : db_(std::move(db)), options_(options) {}
  // The event insert shared by every change; runs inside the caller's transaction.
  Result<int64_t> insertEvent(std::string_view vm, const EventDraft& event);
  // Runtime rows matching `where` ("WHERE name = ?1" with `name` bound, or an ORDER BY alone).
  Result<std::vector<RuntimeRecord>> readRuntimes(std::string_view where, std::optional<std::string_view> name);

  sqlite::Database db_;
  StoreOptions options_;
};

// Microseconds since the Unix epoch.
int64_t unixTimeUs();

}  // namespace vmmd::daemon
