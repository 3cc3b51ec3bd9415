#include "daemon/server/control_commands.h"

#include <memory>

#include "base/log.h"
#include "daemon/definition/libvirt_xml.h"
#include "daemon/server/control_socket.h"
#include "daemon/server/error_mapping.h"

namespace vmmd::daemon {
namespace {

using qmp::ArgType;
using qmp::CommandResult;
using qmp::JsonValue;

std::string stringArg(const JsonValue& args, const char* key) {
  auto it = args.FindMember(key);
  return it != args.MemberEnd() && it->value.IsString() ? std::string(qmp::jsonStringView(it->value)) : std::string();
}

void audit(const qmp::Session& session, std::string_view command, std::string_view detail) {
  const PeerCredentials* peer = peerOf(session);
  log::info(std::string(command) + " " + std::string(detail) + " by " + (peer ? peer->describe() : "an unknown peer"));
}

// Moves the request's Reply into a Completion (std::function must be copyable, a Reply is not)
// that answers with the supervisor's result on the wire.
template <typename T>
Supervisor::Completion<T> deferred(qmp::Request& request) {
  auto reply = std::make_shared<qmp::Reply>(std::move(request.reply));
  return [reply](VmResult<T> result) { reply->complete(toCommandResult(std::move(result))); };
}

template <typename T>
using VmAction = void (Supervisor::*)(const std::string&, Supervisor::Completion<T>);

template <typename T>
void addVmAction(qmp::CommandRegistry& registry, Supervisor& supervisor, const char* command, VmAction<T> action) {
  registry.add({command, {{"name", ArgType::Str}}}, [&supervisor, command, action](qmp::Request& request) {
    std::string name = stringArg(request.args, "name");
    audit(request.session, command, "name=" + name);
    (supervisor.*action)(name, deferred<T>(request));
  });
}

}  // namespace

Result<qmp::Json> agentRequestArg(const JsonValue& command) {
  qmp::Json request;
  if (command.IsObject()) {
    request.CopyFrom(command, request.GetAllocator());
  } else if (command.IsString()) {
    auto parsed = qmp::parseJson(qmp::jsonStringView(command));
    if (!parsed) return Error("not valid JSON: " + parsed.error().message());
    request = std::move(*parsed);
  } else {
    return Error("expected a JSON object, or a string holding one");
  }
  if (!request.IsObject() || !request.HasMember("execute") || !request["execute"].IsString()) {
    return Error(R"(expected {"execute": "guest-...", "arguments": {...}})");
  }
  for (auto it = request.MemberBegin(); it != request.MemberEnd(); ++it) {
    std::string_view key = qmp::jsonStringView(it->name);
    if (key != "execute" && key != "arguments") return Error("unexpected member '" + std::string(key) + "'");
  }
  if (request.HasMember("arguments") && !request["arguments"].IsObject()) return Error("'arguments' must be an object");
  return request;
}

qmp::Json stateChangeData(const std::string& vm, VmState state, const std::string& reason) {
  qmp::Json data = qmp::jsonObject();
  auto& a = data.GetAllocator();
  data.AddMember("name", qmp::jsonString(vm, a), a);
  data.AddMember("state", qmp::jsonString(toString(state), a), a);
  data.AddMember("reason", qmp::jsonString(reason, a), a);
  return data;
}

void registerControlCommands(qmp::CommandRegistry& registry, Supervisor& supervisor) {
  registry.addEnum("VmState", {"shut-off", "starting", "running", "paused", "shutting-down", "crashed"});
  registry.addEvent("VM_STATE_CHANGE", {{"name", "str"}, {"state", "VmState"}, {"reason", "str"}});

  // The definition as JSON (`definition`) or as libvirt domain XML (`xml`): exactly one.
  registry.addSync({"vm-define", {{"definition", ArgType::Object, true}, {"xml", ArgType::Str, true}}, "any"},
                   [&supervisor](const JsonValue& args, qmp::Session& session) -> CommandResult {
                     bool has_json = args.HasMember("definition"), has_xml = args.HasMember("xml");
                     if (has_json == has_xml) {
                       return qmp::QmpError{"GenericError", "vm-define takes exactly one of 'definition' (JSON) and 'xml' (libvirt domain XML)"};
                     }
                     if (has_xml) {
                       auto def = definitionFromDomainXml(qmp::jsonStringView(args["xml"]));
                       if (!def) return qmp::QmpError{"GenericError", "invalid definition: " + def.error().message()};
                       audit(session, "vm-define", "name=" + def->name + " (libvirt XML)");
                       return toCommandResult(supervisor.define(*def));
                     }
                     const JsonValue& def = args["definition"];
                     std::string name = def.HasMember("name") && def["name"].IsString() ? def["name"].GetString() : "?";
                     audit(session, "vm-define", "name=" + name);
                     return toCommandResult(supervisor.define(qmp::toJson(def)));
                   });
  registry.addSync({"vm-dumpxml", {{"name", ArgType::Str}}, "any"},
                   [&supervisor](const JsonValue& args, qmp::Session&) -> CommandResult {
                     return toCommandResult(supervisor.domainXml(stringArg(args, "name")));
                   });
  registry.addSync({"vm-undefine", {{"name", ArgType::Str}}},
                   [&supervisor](const JsonValue& args, qmp::Session& session) -> CommandResult {
                     std::string name = stringArg(args, "name");
                     audit(session, "vm-undefine", "name=" + name);
                     return toCommandResult(supervisor.undefine(name));
                   });
  registry.addSync({"vm-list", {}, "any"},
                   [&supervisor](const JsonValue&, qmp::Session&) -> CommandResult { return toCommandResult(supervisor.list()); });
  registry.addSync({"vm-info", {{"name", ArgType::Str}}, "any"},
                   [&supervisor](const JsonValue& args, qmp::Session&) -> CommandResult {
                     return toCommandResult(supervisor.info(stringArg(args, "name")));
                   });

  addVmAction(registry, supervisor, "vm-start", &Supervisor::start);
  addVmAction(registry, supervisor, "vm-destroy", &Supervisor::destroy);
  addVmAction(registry, supervisor, "vm-reboot", &Supervisor::reboot);
  addVmAction(registry, supervisor, "vm-pause", &Supervisor::pause);
  addVmAction(registry, supervisor, "vm-resume", &Supervisor::resume);

  registry.add({"vm-shutdown",
                {{"name", ArgType::Str}, {"timeout", ArgType::Int, true}, {"force", ArgType::Bool, true}, {"mode", ArgType::Str, true}},
                "any"},
               [&supervisor](qmp::Request& request) {
                 std::string name = stringArg(request.args, "name");
                 int64_t timeout = kDefaultShutdownTimeoutS;
                 if (auto it = request.args.FindMember("timeout"); it != request.args.MemberEnd()) {
                   if (!it->value.IsInt64() || it->value.GetInt64() < 0 || it->value.GetInt64() > 86400) {
                     request.reply.error(qmp::QmpError{"GenericError", "Parameter 'timeout' must be between 0 and 86400 seconds"});
                     return;
                   }
                   timeout = it->value.GetInt64();
                 }
                 bool force = false;
                 if (auto it = request.args.FindMember("force"); it != request.args.MemberEnd()) force = it->value.GetBool();
                 std::string mode = request.args.HasMember("mode") ? stringArg(request.args, "mode") : "acpi";
                 if (mode != "acpi" && mode != "agent") {
                   request.reply.error(qmp::QmpError{"GenericError", "Parameter 'mode' must be 'acpi' or 'agent'"});
                   return;
                 }
                 audit(request.session, "vm-shutdown",
                       "name=" + name + " mode=" + mode + " timeout=" + std::to_string(timeout) + (force ? " force" : ""));
                 supervisor.shutdown(name, static_cast<uint32_t>(timeout), force,
                                     mode == "agent" ? ShutdownMode::kAgent : ShutdownMode::kAcpi, deferred<StopOutcome>(request));
               });

  registry.add({"vm-agent-command", {{"name", ArgType::Str}, {"command", ArgType::Any}, {"timeout", ArgType::Number, true}}, "any"},
               [&supervisor](qmp::Request& request) {
                 std::string name = stringArg(request.args, "name");
                 auto agentRequest = agentRequestArg(request.args["command"]);
                 if (!agentRequest) {
                   request.reply.error(qmp::QmpError::generic("Parameter 'command': " + agentRequest.error().message()));
                   return;
                 }
                 double timeout_s = kDefaultAgentTimeoutS;
                 if (auto it = request.args.FindMember("timeout"); it != request.args.MemberEnd()) {
                   timeout_s = it->value.GetDouble();
                   if (!(timeout_s > 0 && timeout_s <= 86400)) {
                     request.reply.error(qmp::QmpError::generic("Parameter 'timeout' must be between 0 and 86400 seconds"));
                     return;
                   }
                 }
                 audit(request.session, "vm-agent-command",
                       "name=" + name + " command=" + qmp::toJson((*agentRequest)["execute"]));
                 supervisor.agentCommand(name, std::move(*agentRequest), static_cast<uint32_t>(timeout_s * 1000),
                                         deferred<qmp::Json>(request));
               });

  registry.add({"vm-qmp", {{"name", ArgType::Str}, {"command", ArgType::Str}, {"arguments", ArgType::Object, true}}, "any"},
               [&supervisor](qmp::Request& request) {
                 std::string name = stringArg(request.args, "name");
                 std::string command = stringArg(request.args, "command");
                 audit(request.session, "vm-qmp", "name=" + name + " command=" + command);
                 auto it = request.args.FindMember("arguments");
                 const JsonValue* arguments = it != request.args.MemberEnd() ? &it->value : nullptr;
                 supervisor.forward(name, command, arguments, deferred<qmp::Json>(request));
               });
}

}  // namespace vmmd::daemon
