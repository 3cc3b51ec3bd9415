#include "daemon/network/network_manager.h"

namespace vmmd::daemon {

// First cut: the interface the VM side builds against; no network can be defined yet, so every
// network a NIC names is unknown.
struct NetworkManager::Impl {
  uv_loop_t* loop;
  Store& store;
  NetworkManagerConfig config;
  std::function<std::vector<std::string>(const std::string&)> users;
};

namespace {
Error notDefined(const std::string& name) { return Error("network '" + name + "' is not defined", ENOENT); }
}  // namespace

NetworkManager::NetworkManager(uv_loop_t* loop, Store& store, NetworkManagerConfig config)
    : impl_(std::make_unique<Impl>(Impl{loop, store, std::move(config), {}})) {}
NetworkManager::~NetworkManager() = default;

Result<NicAttachment> NetworkManager::attachNic(const std::string& network, const std::string&, const std::string&) {
  return notDefined(network);
}
void NetworkManager::detachNic(const std::string&) {}
void NetworkManager::releaseVm(const std::string&) {}
Status NetworkManager::checkNetworkDefined(const std::string& network) const { return notDefined(network); }
std::optional<std::string> NetworkManager::leasedAddress(const std::string&, const std::string&) const { return std::nullopt; }
void NetworkManager::setUsersQuery(std::function<std::vector<std::string>(const std::string&)> query) {
  impl_->users = std::move(query);
}
Status NetworkManager::define(const qmp::JsonValue&) { return Error("net-define: not implemented yet", ENOSYS); }
Status NetworkManager::undefine(const std::string& name) { return notDefined(name); }
Status NetworkManager::start(const std::string& name) { return notDefined(name); }
Status NetworkManager::stop(const std::string& name) { return notDefined(name); }
Status NetworkManager::setAutostart(const std::string& name, bool) { return notDefined(name); }
Result<qmp::Json> NetworkManager::list() const {
  qmp::Json out;
  out.SetArray();
  return out;
}
Result<qmp::Json> NetworkManager::info(const std::string& name) const { return notDefined(name); }
void NetworkManager::recover() {}

}  // namespace vmmd::daemon
