#include "daemon/server/network_commands.h"

#include "base/log.h"
#include "daemon/server/authorization.h"
#include "daemon/server/control_socket.h"

namespace vmmd::daemon {
namespace {

using qmp::ArgType;
using qmp::CommandResult;
using qmp::JsonValue;

std::optional<qmp::QmpError> notRoot(const qmp::Session& session, std::string_view command) {
  if (callerOf(session).isRoot()) return std::nullopt;
  return qmp::QmpError::generic(std::string(command) + ": permission denied: managing networks is root's");
}

void audit(const qmp::Session& session, std::string_view command, std::string_view detail) {
  const PeerCredentials* peer = peerOf(session);
  log::info(std::string(command) + " " + std::string(detail) + " by " + (peer ? peer->describe() : "an unknown peer"));
}

CommandResult answer(const Status& status) {
  if (!status) return qmp::QmpError::generic(status.error().message());
  return qmp::jsonObject();
}

CommandResult answer(Result<qmp::Json>&& result) {
  if (!result) return qmp::QmpError::generic(result.error().message());
  return std::move(*result);
}

using NameAction = Status (NetworkManager::*)(const std::string&);

void addNameCommand(qmp::CommandRegistry& registry, NetworkManager& networks, const char* command, NameAction action) {
  registry.addSync({command, {{"name", ArgType::Str}}}, [&networks, command, action](const JsonValue& args, qmp::Session& session) -> CommandResult {
    if (auto refused = notRoot(session, command)) return *refused;
    std::string name(qmp::jsonStringView(args["name"]));
    audit(session, command, "name=" + name);
    return answer((networks.*action)(name));
  });
}

}  // namespace

void registerNetworkCommands(qmp::CommandRegistry& registry, NetworkManager& networks) {
  registry.addSync({"net-define", {{"definition", ArgType::Object}}}, [&networks](const JsonValue& args, qmp::Session& session) -> CommandResult {
    if (auto refused = notRoot(session, "net-define")) return *refused;
    const JsonValue& definition = args["definition"];
    auto name = definition.HasMember("name") && definition["name"].IsString() ? std::string(qmp::jsonStringView(definition["name"])) : "?";
    audit(session, "net-define", "name=" + name);
    auto st = networks.define(definition);
    if (!st) return qmp::QmpError::generic("invalid network definition: " + st.error().message());
    return qmp::jsonObject();
  });
  addNameCommand(registry, networks, "net-undefine", &NetworkManager::undefine);
  addNameCommand(registry, networks, "net-start", &NetworkManager::start);
  addNameCommand(registry, networks, "net-stop", &NetworkManager::stop);
  registry.addSync({"net-autostart", {{"name", ArgType::Str}, {"enabled", ArgType::Bool}}},
                   [&networks](const JsonValue& args, qmp::Session& session) -> CommandResult {
                     if (auto refused = notRoot(session, "net-autostart")) return *refused;
                     std::string name(qmp::jsonStringView(args["name"]));
                     bool enabled = args["enabled"].GetBool();
                     audit(session, "net-autostart", "name=" + name + (enabled ? " on" : " off"));
                     return answer(networks.setAutostart(name, enabled));
                   });
  registry.addSync({"net-list", {}}, [&networks](const JsonValue&, qmp::Session& session) -> CommandResult {
    if (auto refused = notRoot(session, "net-list")) return *refused;
    return answer(networks.list());
  });
  registry.addSync({"net-info", {{"name", ArgType::Str}}}, [&networks](const JsonValue& args, qmp::Session& session) -> CommandResult {
    if (auto refused = notRoot(session, "net-info")) return *refused;
    return answer(networks.info(std::string(qmp::jsonStringView(args["name"]))));
  });
}

}  // namespace vmmd::daemon
