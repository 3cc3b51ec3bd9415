// Store: network definitions, their state while active, and their static DHCP leases.
#include "daemon/store/store.h"

namespace vmmd::daemon {
namespace {

constexpr std::string_view kNetworkColumns =
    "SELECT name, json, active, created_bridge, dnsmasq_pid, dnsmasq_start_time FROM networks";

StoredNetwork readNetwork(const sqlite::Statement& stmt) {
  return StoredNetwork{stmt.columnText(0), stmt.columnText(1), stmt.columnInt(2) != 0, stmt.columnInt(3) != 0,
                       stmt.columnOptionalInt(4), stmt.columnOptionalInt(5)};
}

Error networkNotDefined(const std::string& name) { return Error("network '" + name + "' is not defined", kStoreNotDefined); }

}  // namespace

Status Store::defineNetwork(const std::string& name, const std::string& json) {
  auto taken = db_.hasRow("SELECT 1 FROM networks WHERE name = ?1", name);
  if (!taken) return taken.error();
  if (*taken) return Error("network '" + name + "' is already defined", kStoreNameTaken);
  return db_.run("INSERT INTO networks (name, json, updated_us) VALUES (?1, ?2, ?3)", name, json, unixTimeUs());
}

Status Store::updateNetworkJson(const std::string& name, const std::string& json) {
  if (auto st = db_.run("UPDATE networks SET json = ?2, updated_us = ?3 WHERE name = ?1", name, json, unixTimeUs()); !st) return st;
  if (sqlite3_changes(db_.handle()) == 0) return networkNotDefined(name);
  return {};
}

Status Store::undefineNetwork(const std::string& name) {
  // The leases go with it (ON DELETE CASCADE).
  if (auto st = db_.run("DELETE FROM networks WHERE name = ?1", name); !st) return st;
  if (sqlite3_changes(db_.handle()) == 0) return networkNotDefined(name);
  return {};
}

Status Store::saveNetworkState(const StoredNetwork& n) {
  if (auto st = db_.run(
          "UPDATE networks SET active = ?2, created_bridge = ?3, dnsmasq_pid = ?4, dnsmasq_start_time = ?5, updated_us = ?6 "
          "WHERE name = ?1",
          n.name, int64_t{n.active}, int64_t{n.created_bridge}, n.dnsmasq_pid, n.dnsmasq_start_time, unixTimeUs());
      !st) {
    return st;
  }
  if (sqlite3_changes(db_.handle()) == 0) return networkNotDefined(n.name);
  return {};
}

Result<std::optional<StoredNetwork>> Store::network(const std::string& name) {
  auto stmt = db_.prepare(std::string(kNetworkColumns) + " WHERE name = ?1", name);
  if (!stmt) return stmt.error();
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return std::optional<StoredNetwork>();
  return std::optional<StoredNetwork>(readNetwork(*stmt));
}

Result<std::vector<StoredNetwork>> Store::networks() {
  auto stmt = db_.prepare(std::string(kNetworkColumns) + " ORDER BY name");
  if (!stmt) return stmt.error();
  std::vector<StoredNetwork> out;
  Status st = stmt->forEachRow([&]() -> Status {
    out.push_back(readNetwork(*stmt));
    return {};
  });
  if (!st) return st.error();
  return out;
}

Result<std::vector<NetworkLease>> Store::networkLeases(const std::string& network) {
  auto stmt = db_.prepare("SELECT network, mac, vm, ipv4 FROM network_leases WHERE network = ?1 ORDER BY vm, mac", network);
  if (!stmt) return stmt.error();
  std::vector<NetworkLease> out;
  Status st = stmt->forEachRow([&]() -> Status {
    out.push_back({stmt->columnText(0), stmt->columnText(1), stmt->columnText(2), stmt->columnText(3)});
    return {};
  });
  if (!st) return st.error();
  return out;
}

Status Store::addNetworkLease(const NetworkLease& lease) {
  auto taken = db_.hasRow("SELECT 1 FROM network_leases WHERE network = ?1 AND (mac = ?2 OR ipv4 = ?3)", lease.network,
                          lease.mac, lease.ipv4);
  if (!taken) return taken.error();
  if (*taken) {
    return Error("network '" + lease.network + "': MAC " + lease.mac + " or address " + lease.ipv4 + " already has a lease",
                 kStoreNameTaken);
  }
  return db_.run("INSERT INTO network_leases (network, mac, vm, ipv4) VALUES (?1, ?2, ?3, ?4)", lease.network, lease.mac,
                 lease.vm, lease.ipv4);
}

Result<std::vector<std::string>> Store::dropVmLeases(const std::string& vm) {
  auto tx = sqlite::Transaction::begin(db_);
  if (!tx) return tx.error();
  auto stmt = db_.prepare("SELECT DISTINCT network FROM network_leases WHERE vm = ?1 ORDER BY network", vm);
  if (!stmt) return stmt.error();
  std::vector<std::string> networks;
  Status st = stmt->forEachRow([&]() -> Status {
    networks.push_back(stmt->columnText(0));
    return {};
  });
  if (!st) return st.error();
  if (auto run = db_.run("DELETE FROM network_leases WHERE vm = ?1", vm); !run) return run.error();
  if (auto commit = tx->commit(); !commit) return commit.error();
  return networks;
}

}  // namespace vmmd::daemon
