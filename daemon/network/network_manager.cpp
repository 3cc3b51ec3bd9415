#include "daemon/network/network_manager.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/log.h"
#include "daemon/definition/identifiers.h"
#include "daemon/network/dnsmasq_config.h"
#include "daemon/network/dnsmasq_supervisor.h"
#include "daemon/network/network_definition.h"
#include "daemon/network/network_host.h"
#include "net/links.h"
#include "net/vm_tap.h"

namespace vmmd::daemon {

namespace {

Error notDefined(const std::string& name) { return Error("network '" + name + "' is not defined", ENOENT); }

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// Written to a temporary file and renamed, so dnsmasq never reads half a file.
Status writeFileAtomically(const std::string& path, const std::string& text) {
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return Error("write " + temporary + " failed");
  }
  if (::rename(temporary.c_str(), path.c_str()) < 0) return Error::fromErrno("rename " + temporary);
  return {};
}

std::string readWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

struct NetworkManager::Impl {
  uv_loop_t* loop;
  Store& store;
  NetworkManagerConfig config;
  std::function<std::vector<std::string>(const std::string&)> users;
  // Per network name, for vmmd's life: a stopped network's supervisor waits for its dnsmasq's exit.
  std::map<std::string, std::unique_ptr<DnsmasqSupervisor>> dnsmasqs;

  Result<NetworkDefinition> load(const std::string& name) const;
  Result<StoredNetwork> stored(const std::string& name) const;
  DnsmasqFiles files(const std::string& name) const { return dnsmasqFilesFor(config.state_dir, name); }
  DnsmasqSupervisor& dnsmasqOf(const std::string& name);
  Status checkAgainstOthers(const NetworkDefinition& def) const;
  Status refuseIfUsed(const std::string& name, std::string_view action) const;
  // Brings the host side up (or repairs it after a restart) and records it in the store.
  Status activate(const NetworkDefinition& def, const StoredNetwork& state);
  void deactivate(const NetworkDefinition& def, bool created_bridge);
  Status writeHostsFile(const std::string& network) const;
  Status reloadLeases(const std::string& network);
  Result<std::string> allocateAddress(const NetworkDefinition& def) const;
};

Result<StoredNetwork> NetworkManager::Impl::stored(const std::string& name) const {
  auto row = store.network(name);
  if (!row) return row.error();
  if (!*row) return notDefined(name);
  return **row;
}

Result<NetworkDefinition> NetworkManager::Impl::load(const std::string& name) const {
  auto row = stored(name);
  if (!row) return row.error();
  auto def = parseNetworkDefinition(row->json);
  if (!def) return def.error().withContext("stored definition of network '" + name + "'");
  return *def;
}

DnsmasqSupervisor& NetworkManager::Impl::dnsmasqOf(const std::string& name) {
  auto& slot = dnsmasqs[name];
  if (!slot) {
    DnsmasqPolicy policy{config.dnsmasq, config.dnsmasq_max_restarts, config.restart_window_s};
    slot = std::make_unique<DnsmasqSupervisor>(
        loop, name, files(name), policy, [this, name](std::optional<pid_t> pid, std::optional<uint64_t> start_time) {
          auto row = store.network(name);
          if (!row || !*row) return;
          StoredNetwork state = **row;
          state.dnsmasq_pid = pid ? std::optional<int64_t>(*pid) : std::nullopt;
          state.dnsmasq_start_time = start_time ? std::optional<int64_t>(int64_t(*start_time)) : std::nullopt;
          if (auto st = store.saveNetworkState(state); !st) log::error("network '" + name + "': " + st.error().message());
        });
  }
  return *slot;
}

Status NetworkManager::Impl::checkAgainstOthers(const NetworkDefinition& def) const {
  auto rows = store.networks();
  if (!rows) return rows.error();
  for (const auto& row : *rows) {
    if (row.name == def.name) continue;
    auto other = parseNetworkDefinition(row.json);
    if (!other) continue;
    if (other->bridge == def.bridge) {
      return Error("bridge: " + def.bridge + " is already the bridge of network '" + other->name + "'", EEXIST);
    }
    if (def.ipv4 && other->ipv4 && def.ipv4->subnet().overlaps(other->ipv4->subnet())) {
      return Error("ipv4: " + def.ipv4->subnet().text() + " overlaps " + other->ipv4->subnet().text() + " of network '" +
                       other->name + "'",
                   EEXIST);
    }
  }
  return {};
}

Status NetworkManager::Impl::refuseIfUsed(const std::string& name, std::string_view action) const {
  if (!users) return {};
  auto vms = users(name);
  if (vms.empty()) return {};
  return Error("network '" + name + "' is in use by running VMs (" + joinNames(vms) + "); cannot " + std::string(action) + " it",
               EBUSY);
}

Status NetworkManager::Impl::writeHostsFile(const std::string& network) const {
  auto leases = store.networkLeases(network);
  if (!leases) return leases.error();
  return writeFileAtomically(files(network).hosts, dnsmasqHostsFile(*leases));
}

Status NetworkManager::Impl::reloadLeases(const std::string& network) {
  if (auto st = writeHostsFile(network); !st) return st;
  return dnsmasqOf(network).reload();
}

Status NetworkManager::Impl::activate(const NetworkDefinition& def, const StoredNetwork& state) {
  StoredNetwork next = state;
  next.active = true;
  if (!def.managesBridge()) return store.saveNetworkState(next);
  // Recorded before the bridge exists: a vmmd killed half-way knows the bridge is its own.
  next.created_bridge = true;
  if (auto st = store.saveNetworkState(next); !st) return st;
  if (auto st = bringUpBridge(def); !st) return st;
  if (auto st = installNetworkRules(def); !st) return st;
  DnsmasqFiles paths = files(def.name);
  std::error_code ec;
  std::filesystem::create_directories(paths.dir, ec);
  if (ec) return Error("create " + paths.dir + ": " + ec.message());
  ::chmod(paths.dir.c_str(), 0700);
  if (auto st = writeFileAtomically(paths.conf, dnsmasqConf(def, paths)); !st) return st;
  if (auto st = writeHostsFile(def.name); !st) return st;
  return dnsmasqOf(def.name).startOrAdopt(state.dnsmasq_pid ? std::optional<pid_t>(pid_t(*state.dnsmasq_pid)) : std::nullopt,
                                          state.dnsmasq_start_time ? std::optional<uint64_t>(*state.dnsmasq_start_time)
                                                                   : std::nullopt);
}

void NetworkManager::Impl::deactivate(const NetworkDefinition& def, bool created_bridge) {
  if (auto it = dnsmasqs.find(def.name); it != dnsmasqs.end()) it->second->stop();
  if (def.managesBridge()) {
    if (auto st = removeNetworkRules(def.name); !st) log::warning(st.error().message());
  }
  if (created_bridge) {
    if (auto st = removeBridge(def.bridge); !st) log::warning("network '" + def.name + "': " + st.error().message());
  }
  auto row = store.network(def.name);
  if (row && *row) {
    StoredNetwork state = **row;
    state.active = false;
    state.created_bridge = false;
    state.dnsmasq_pid.reset();
    state.dnsmasq_start_time.reset();
    if (auto st = store.saveNetworkState(state); !st) log::error("network '" + def.name + "': " + st.error().message());
  }
}

Result<std::string> NetworkManager::Impl::allocateAddress(const NetworkDefinition& def) const {
  std::set<uint32_t> used{def.ipv4->address};
  auto leases = store.networkLeases(def.name);
  if (!leases) return leases.error();
  for (const auto& lease : *leases) {
    if (auto a = parseIpv4(lease.ipv4)) used.insert(*a);
  }
  // Addresses dnsmasq handed out dynamically stay with their clients.
  for (const auto& lease : parseDnsmasqLeases(readWholeFile(files(def.name).leases))) {
    if (auto a = parseIpv4(lease.ipv4)) used.insert(*a);
  }
  for (uint64_t a = def.ipv4->poolStart(); a <= def.ipv4->poolEnd(); ++a) {
    if (!used.count(uint32_t(a))) return formatIpv4(uint32_t(a));
  }
  return Error("network '" + def.name + "': no free address left in " + formatIpv4(def.ipv4->poolStart()) + "-" +
               formatIpv4(def.ipv4->poolEnd()), ENOSPC);
}

NetworkManager::NetworkManager(uv_loop_t* loop, Store& store, NetworkManagerConfig config)
    : impl_(std::make_unique<Impl>(Impl{loop, store, std::move(config), {}, {}})) {}
NetworkManager::~NetworkManager() = default;

Result<NicAttachment> NetworkManager::attachNic(const std::string& network, const std::string& vm_name, const std::string& mac) {
  auto state = impl_->stored(network);
  if (!state) return state.error();
  if (!state->active) return Error("network '" + network + "' is not active (vmctl net-start " + network + ")", ENETDOWN);
  auto def = impl_->load(network);
  if (!def) return def.error();
  auto canonical = canonicalMac(mac);
  if (!canonical) return canonical.error();
  NicAttachment attachment;
  attachment.network = network;
  attachment.bridge = def->bridge;
  if (def->ipv4) {
    auto leases = impl_->store.networkLeases(network);
    if (!leases) return leases.error();
    for (const auto& lease : *leases) {
      if (lease.mac != *canonical) continue;
      if (lease.vm != vm_name) {
        return Error("network '" + network + "': MAC " + *canonical + " is already leased to VM '" + lease.vm + "'", EEXIST);
      }
      attachment.ipv4 = lease.ipv4;
    }
    if (attachment.ipv4.empty()) {
      auto address = impl_->allocateAddress(*def);
      if (!address) return address.error();
      if (auto st = impl_->store.addNetworkLease({network, *canonical, vm_name, *address}); !st) return st.error();
      attachment.ipv4 = *address;
      if (auto st = impl_->reloadLeases(network); !st) log::warning(st.error().message());
    }
  }
  auto tap = net::createVmTap("vmmdt%d");
  if (!tap) return tap.error();
  auto sock = net::NetlinkSocket::open();
  if (!sock) return sock.error();
  if (auto st = net::setMaster(*sock, tap->name, def->bridge); !st) return st.error();
  if (auto st = net::setLinkUp(*sock, tap->name); !st) return st.error();
  attachment.tap = std::move(tap->fd);
  attachment.tap_name = tap->name;
  return attachment;
}

void NetworkManager::detachNic(const std::string& tap_name) {
  // The tap is not persistent: it went with the worker's last fd. This removes one that some
  // other process still holds open (the worker's child, a leaked fd).
  auto sock = net::NetlinkSocket::open();
  if (!sock) return;
  auto kind = net::linkKind(*sock, tap_name);
  if (kind && *kind && **kind == "tun") {
    if (auto st = net::deleteLink(*sock, tap_name); !st && st.error().code() != ENODEV) log::warning(st.error().message());
  }
}

void NetworkManager::releaseVm(const std::string& vm_name) {
  auto networks = impl_->store.dropVmLeases(vm_name);
  if (!networks) {
    log::error("release the leases of VM '" + vm_name + "': " + networks.error().message());
    return;
  }
  for (const auto& network : *networks) {
    auto state = impl_->stored(network);
    if (!state || !state->active) continue;
    if (auto st = impl_->reloadLeases(network); !st) log::warning(st.error().message());
  }
}

Status NetworkManager::checkNetworkDefined(const std::string& network) const {
  auto state = impl_->stored(network);
  if (!state) return state.error();
  return {};
}

std::optional<std::string> NetworkManager::leasedAddress(const std::string& network, const std::string& mac) const {
  auto canonical = canonicalMac(mac);
  if (!canonical) return std::nullopt;
  for (const auto& lease : parseDnsmasqLeases(readWholeFile(impl_->files(network).leases))) {
    if (lease.mac == *canonical) return lease.ipv4;
  }
  return std::nullopt;
}

void NetworkManager::setUsersQuery(std::function<std::vector<std::string>(const std::string&)> query) {
  impl_->users = std::move(query);
}

Status NetworkManager::define(const qmp::JsonValue& document) {
  auto def = parseNetworkDefinition(document);
  if (!def) return def.error();
  if (auto existing = impl_->store.network(def->name); !existing) {
    return existing.error();
  } else if (*existing) {
    return Error("network '" + def->name + "' is already defined", EEXIST);
  }
  if (auto st = impl_->checkAgainstOthers(*def); !st) return st;
  if (auto st = impl_->store.defineNetwork(def->name, serializeNetworkDefinition(*def)); !st) return st;
  log::info("network '" + def->name + "' defined (" + std::string(toString(def->mode)) + ", bridge " + def->bridge + ")");
  return {};
}

Status NetworkManager::undefine(const std::string& name) {
  auto state = impl_->stored(name);
  if (!state) return state.error();
  if (auto st = impl_->refuseIfUsed(name, "undefine"); !st) return st;
  if (state->active) return Error("network '" + name + "' is active; stop it first (vmctl net-stop " + name + ")", EBUSY);
  if (auto st = impl_->store.undefineNetwork(name); !st) return st;
  impl_->dnsmasqs.erase(name);
  std::error_code ec;
  std::filesystem::remove_all(impl_->files(name).dir, ec);
  log::info("network '" + name + "' undefined");
  return {};
}

Status NetworkManager::start(const std::string& name) {
  auto row = impl_->store.network(name);
  if (!row) return row.error();
  if (!*row && name == "default") {
    NetworkDefinition def = defaultNetworkDefinition();
    if (auto st = impl_->checkAgainstOthers(def); !st) return st.error().withContext("define the default network");
    if (auto st = impl_->store.defineNetwork(def.name, serializeNetworkDefinition(def)); !st) return st;
    log::info("network 'default' defined (libvirt's default: nat, vmmdbr0, 192.168.124.0/24)");
  }
  auto state = impl_->stored(name);
  if (!state) return state.error();
  if (state->active) return Error("network '" + name + "' is already active", EALREADY);
  auto def = impl_->load(name);
  if (!def) return def.error();
  if (auto st = checkHostForStart(*def); !st) return st.error().withContext("network '" + name + "'");
  if (auto st = impl_->activate(*def, *state); !st) {
    impl_->deactivate(*def, def->managesBridge());
    return st.error().withContext("network '" + name + "'");
  }
  log::info("network '" + name + "' started (bridge " + def->bridge + ")");
  return {};
}

Status NetworkManager::stop(const std::string& name) {
  auto state = impl_->stored(name);
  if (!state) return state.error();
  if (!state->active) return Error("network '" + name + "' is not active", EALREADY);
  if (auto st = impl_->refuseIfUsed(name, "stop"); !st) return st;
  auto def = impl_->load(name);
  if (!def) return def.error();
  impl_->deactivate(*def, state->created_bridge);
  log::info("network '" + name + "' stopped");
  return {};
}

Status NetworkManager::setAutostart(const std::string& name, bool enabled) {
  auto def = impl_->load(name);
  if (!def) return def.error();
  def->autostart = enabled;
  return impl_->store.updateNetworkJson(name, serializeNetworkDefinition(*def));
}

Result<qmp::Json> NetworkManager::list() const {
  auto rows = impl_->store.networks();
  if (!rows) return rows.error();
  qmp::Json out = qmp::jsonArray();
  auto& a = out.GetAllocator();
  for (const auto& row : *rows) {
    auto def = parseNetworkDefinition(row.json);
    if (!def) continue;
    qmp::JsonValue entry(rapidjson::kObjectType);
    entry.AddMember("name", qmp::jsonString(def->name, a), a);
    entry.AddMember("mode", qmp::jsonString(toString(def->mode), a), a);
    entry.AddMember("bridge", qmp::jsonString(def->bridge, a), a);
    entry.AddMember("state", qmp::jsonString(row.active ? "active" : "inactive", a), a);
    entry.AddMember("autostart", def->autostart, a);
    entry.AddMember("subnet", qmp::jsonString(def->ipv4 ? def->ipv4->subnet().text() : "", a), a);
    out.PushBack(entry, a);
  }
  return out;
}

Result<qmp::Json> NetworkManager::info(const std::string& name) const {
  auto state = impl_->stored(name);
  if (!state) return state.error();
  auto def = parseNetworkDefinition(state->json);
  if (!def) return def.error();
  qmp::Json out = qmp::jsonObject();
  auto& a = out.GetAllocator();
  qmp::Json definition = networkDefinitionJson(*def);
  out.AddMember("name", qmp::jsonString(def->name, a), a);
  out.AddMember("state", qmp::jsonString(state->active ? "active" : "inactive", a), a);
  out.AddMember("mode", qmp::jsonString(toString(def->mode), a), a);
  out.AddMember("bridge", qmp::jsonString(def->bridge, a), a);
  out.AddMember("bridge_created_by_vmmd", state->created_bridge, a);
  out.AddMember("autostart", def->autostart, a);
  out.AddMember("definition", qmp::JsonValue(definition, a), a);
  if (def->managesBridge()) {
    qmp::JsonValue dnsmasq(rapidjson::kObjectType);
    auto it = impl_->dnsmasqs.find(name);
    auto pid = it != impl_->dnsmasqs.end() ? it->second->pid() : std::nullopt;
    if (pid) dnsmasq.AddMember("pid", int64_t{*pid}, a);
    else dnsmasq.AddMember("pid", qmp::JsonValue(), a);
    dnsmasq.AddMember("restarts", it != impl_->dnsmasqs.end() ? it->second->restarts() : 0, a);
    dnsmasq.AddMember("gave_up", it != impl_->dnsmasqs.end() && it->second->gaveUp(), a);
    dnsmasq.AddMember("conf", qmp::jsonString(impl_->files(name).conf, a), a);
    out.AddMember("dnsmasq", dnsmasq, a);
    qmp::JsonValue statics(rapidjson::kArrayType);
    auto leases = impl_->store.networkLeases(name);
    if (!leases) return leases.error();
    for (const auto& lease : *leases) {
      qmp::JsonValue entry(rapidjson::kObjectType);
      entry.AddMember("mac", qmp::jsonString(lease.mac, a), a);
      entry.AddMember("ipv4", qmp::jsonString(lease.ipv4, a), a);
      entry.AddMember("vm", qmp::jsonString(lease.vm, a), a);
      statics.PushBack(entry, a);
    }
    out.AddMember("static_leases", statics, a);
    qmp::JsonValue leased(rapidjson::kArrayType);
    for (const auto& lease : parseDnsmasqLeases(readWholeFile(impl_->files(name).leases))) {
      qmp::JsonValue entry(rapidjson::kObjectType);
      entry.AddMember("mac", qmp::jsonString(lease.mac, a), a);
      entry.AddMember("ipv4", qmp::jsonString(lease.ipv4, a), a);
      entry.AddMember("hostname", qmp::jsonString(lease.hostname, a), a);
      entry.AddMember("expiry", lease.expiry, a);
      leased.PushBack(entry, a);
    }
    out.AddMember("leases", leased, a);
  }
  return out;
}

void NetworkManager::recover() {
  auto rows = impl_->store.networks();
  if (!rows) {
    log::error("networks: " + rows.error().message());
    return;
  }
  for (const auto& row : *rows) {
    auto def = parseNetworkDefinition(row.json);
    if (!def) {
      log::error("network '" + row.name + "': " + def.error().message());
      continue;
    }
    if (row.active) {
      // What a killed vmmd left: the bridge, the rules and dnsmasq are made good (re-adopted).
      if (auto st = impl_->activate(*def, row); !st) {
        log::error("network '" + row.name + "': could not restore it: " + st.error().message());
      }
    } else if (def->autostart) {
      if (auto st = start(row.name); !st) log::error("autostart: " + st.error().message());
    }
  }
}

}  // namespace vmmd::daemon
