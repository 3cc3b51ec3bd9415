#include "daemon/server/control_commands.h"

#include <memory>

#include "base/log.h"
#include "base/uv_work.h"
#include "daemon/access/definition_files.h"
#include "daemon/definition/definition_json.h"
#include "daemon/definition/libvirt_xml.h"
#include "daemon/server/authorization.h"
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

// Answers the request with the refusal when its caller may not act on VM `name`.
bool refused(Supervisor& supervisor, qmp::Request& request, const std::string& name) {
  auto refusal_error = refusal(supervisor, callerOf(request.session), name);
  if (refusal_error) request.reply.error(*refusal_error);
  return refusal_error.has_value();
}

template <typename T>
void addVmAction(qmp::CommandRegistry& registry, Supervisor& supervisor, const char* command, VmAction<T> action) {
  registry.add({command, {{"name", ArgType::Str}}}, [&supervisor, command, action](qmp::Request& request) {
    std::string name = stringArg(request.args, "name");
    audit(request.session, command, "name=" + name);
    if (refused(supervisor, request, name)) return;
    (supervisor.*action)(name, deferred<T>(request));
  });
}

// Opens every file of `def` as `owner` on libuv's thread pool (forks, opens, reads qcow2
// headers: never on the loop), then runs `then` on the loop with the outcome, unless the
// supervisor is gone by then (vmmd stopping).
void checkFilesOffLoop(Supervisor& supervisor, VmDefinition def, Owner owner, std::function<void(Status)> then) {
  auto outcome = std::make_shared<Status>();
  auto queued = queueWork(
      supervisor.loop(),
      [def = std::move(def), owner = std::move(owner), outcome] { *outcome = checkDefinitionFilesAsOwner(def, owner); },
      [alive = supervisor.lifetime(), outcome, then](bool cancelled) {
        if (alive.expired()) return;
        then(cancelled ? Status(Error("the file check was cancelled")) : *outcome);
      });
  if (!queued) then(queued);
}

// vm-define after its parse: the files checked as the caller, then the definition stored.
void defineAsCaller(Supervisor& supervisor, qmp::Request& request, VmDefinition def) {
  auto reply = std::make_shared<qmp::Reply>(std::move(request.reply));
  Owner owner = callerOf(request.session);
  std::string name = def.name;
  checkFilesOffLoop(supervisor, def, owner, [&supervisor, reply, def, owner](Status checked) {
    if (!checked) {
      reply->error(qmp::QmpError::generic("VM '" + def.name + "': " + checked.error().message()));
      return;
    }
    reply->complete(toCommandResult(supervisor.define(def, owner)));
  });
}

// vm-start: the files checked again as the owner (they may have changed since the define), then
// the start.
void startAsOwner(Supervisor& supervisor, qmp::Request& request, const std::string& name) {
  auto stored = supervisor.stored(name);
  if (!stored) {
    request.reply.error(toQmpError(stored.error()));
    return;
  }
  auto done = deferred<Done>(request);
  checkFilesOffLoop(supervisor, stored->definition, stored->owner, [&supervisor, name, done](Status checked) {
    if (!checked) {
      done(VmError{VmErrorCode::kInvalidArgument, "VM '" + name + "': " + checked.error().message(), {}});
      return;
    }
    supervisor.start(name, done);
  });
}

// A command on VM `name` with one more string argument (a snapshot tag, a destination).
template <typename T>
using VmAction2 = void (Supervisor::*)(const std::string&, const std::string&, Supervisor::Completion<T>);

template <typename T>
void addVmAction2(qmp::CommandRegistry& registry, Supervisor& supervisor, const char* command, const char* second,
                  VmAction2<T> action) {
  registry.add({command, {{"name", ArgType::Str}, {second, ArgType::Str}}, "any"},
               [&supervisor, command, second, action](qmp::Request& request) {
                 std::string name = stringArg(request.args, "name");
                 std::string value = stringArg(request.args, second);
                 audit(request.session, command, "name=" + name + " " + second + "=" + value);
                 if (refused(supervisor, request, name)) return;
                 (supervisor.*action)(name, value, deferred<T>(request));
               });
}

// The owner named in vm-migrate-incoming: only root may define a VM for someone else (the source
// vmmd, root, passes the VM's owner); anyone else defines it as themselves.
Result<Owner> arrivingOwner(const JsonValue& args, const Owner& caller) {
  auto it = args.FindMember("owner");
  if (it == args.MemberEnd()) return caller;
  const JsonValue& o = it->value;
  if (!o.HasMember("uid") || !o["uid"].IsUint() || !o.HasMember("gid") || !o["gid"].IsUint()) {
    return Error("Parameter 'owner' must be {\"uid\": N, \"gid\": N, \"groups\": [N...]}");
  }
  Owner owner{o["uid"].GetUint(), o["gid"].GetUint(), {}};
  if (o.HasMember("groups") && o["groups"].IsArray()) {
    for (const auto& g : o["groups"].GetArray()) {
      if (!g.IsUint()) return Error("Parameter 'owner': groups must be numbers");
      owner.groups.push_back(g.GetUint());
    }
  }
  if (!caller.isRoot() && owner.uid != caller.uid) return Error("permission denied: only root may receive a VM for another user");
  return owner;
}

void registerMobilityCommands(qmp::CommandRegistry& registry, Supervisor& supervisor) {
  addVmAction2(registry, supervisor, "vm-snapshot-save", "tag", &Supervisor::snapshotSave);
  addVmAction2(registry, supervisor, "vm-snapshot-revert", "tag", &Supervisor::snapshotRevert);
  addVmAction2(registry, supervisor, "vm-snapshot-delete", "tag", &Supervisor::snapshotDelete);
  registry.addSync({"vm-snapshot-list", {{"name", ArgType::Str}}, "any"},
                   [&supervisor](const JsonValue& args, qmp::Session& session) -> CommandResult {
                     std::string name = stringArg(args, "name");
                     if (auto refusal_error = refusal(supervisor, callerOf(session), name)) return *refusal_error;
                     return toCommandResult(supervisor.snapshots(name));
                   });

  // Root's only: the source vmmd speaks to the destination with its own (root) identity, which the
  // destination trusts to name the VM's owner; a user could otherwise reach, through it, a vmmd
  // socket or any other socket they may not connect to themselves.
  registry.add({"vm-migrate", {{"name", ArgType::Str}, {"destination", ArgType::Str}}, "any"}, [&supervisor](qmp::Request& request) {
    std::string name = stringArg(request.args, "name");
    std::string destination = stringArg(request.args, "destination");
    audit(request.session, "vm-migrate", "name=" + name + " destination=" + destination);
    if (!callerOf(request.session).isRoot()) {
      return request.reply.error(qmp::QmpError::generic("vm-migrate: permission denied: moving a VM to another vmmd is root's"));
    }
    if (refused(supervisor, request, name)) return;
    supervisor.migrateTo(name, destination, deferred<MigrationOutcome>(request));
  });
  addVmAction(registry, supervisor, "vm-migrate-cancel", &Supervisor::migrateCancel);
  registry.addSync({"vm-migrate-status", {{"name", ArgType::Str}}, "any"},
                   [&supervisor](const JsonValue& args, qmp::Session& session) -> CommandResult {
                     std::string name = stringArg(args, "name");
                     if (auto refusal_error = refusal(supervisor, callerOf(session), name)) return *refusal_error;
                     return toCommandResult(supervisor.migrationStatus(name));
                   });
  // The destination's half, called by the source vmmd: the definition (with its owner), the
  // files checked as that owner, then a worker waiting for the stream.
  registry.add({"vm-migrate-incoming", {{"definition", ArgType::Object}, {"owner", ArgType::Object, true}, {"run", ArgType::Bool, true}}, "any"},
               [&supervisor](qmp::Request& request) {
                 auto def = parseDefinition(qmp::toJson(request.args["definition"]));
                 if (!def) {
                   request.reply.error(qmp::QmpError::generic("invalid definition: " + def.error().message()));
                   return;
                 }
                 auto owner = arrivingOwner(request.args, callerOf(request.session));
                 if (!owner) {
                   request.reply.error(qmp::QmpError::generic("VM '" + def->name + "': " + owner.error().message()));
                   return;
                 }
                 bool run = !request.args.HasMember("run") || request.args["run"].GetBool();
                 audit(request.session, "vm-migrate-incoming", "name=" + def->name + " for " + owner->describe());
                 auto done = deferred<IncomingEndpoint>(request);
                 std::weak_ptr<qmp::Session> source = request.session.shared_from_this();
                 checkFilesOffLoop(supervisor, *def, *owner, [&supervisor, def = *def, owner = *owner, run, done, source](Status checked) {
                   if (!checked) {
                     done(VmError{VmErrorCode::kInvalidArgument, "VM '" + def.name + "': " + checked.error().message(), {}});
                     return;
                   }
                   // The source hung up while the files were checked: nobody would stream or commit.
                   auto session = source.lock();
                   if (!session || session->closed()) return;
                   supervisor.acceptIncoming(def, owner, run, done, session->id());
                 });
               });
  addVmAction(registry, supervisor, "vm-migrate-commit", &Supervisor::commitIncoming);
  addVmAction(registry, supervisor, "vm-migrate-abort", &Supervisor::abortIncoming);
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

  // The definition as JSON (`definition`) or as libvirt domain XML (`xml`): exactly one. The VM
  // belongs to the caller; its files are opened with the caller's credentials, off the loop.
  registry.add({"vm-define", {{"definition", ArgType::Object, true}, {"xml", ArgType::Str, true}}, "any"},
               [&supervisor](qmp::Request& request) {
                 const JsonValue& args = request.args;
                 bool has_json = args.HasMember("definition"), has_xml = args.HasMember("xml");
                 if (has_json == has_xml) {
                   request.reply.error(qmp::QmpError::generic("vm-define takes exactly one of 'definition' (JSON) and 'xml' (libvirt domain XML)"));
                   return;
                 }
                 auto def = has_xml ? definitionFromDomainXml(qmp::jsonStringView(args["xml"]))
                                    : parseDefinition(qmp::toJson(args["definition"]));
                 if (!def) {
                   request.reply.error(qmp::QmpError::generic("invalid definition: " + def.error().message()));
                   return;
                 }
                 audit(request.session, "vm-define", "name=" + def->name + (has_xml ? " (libvirt XML)" : ""));
                 defineAsCaller(supervisor, request, std::move(*def));
               });
  registry.addSync({"vm-dumpxml", {{"name", ArgType::Str}}, "any"},
                   [&supervisor](const JsonValue& args, qmp::Session& session) -> CommandResult {
                     std::string name = stringArg(args, "name");
                     if (auto refusal_error = refusal(supervisor, callerOf(session), name)) return *refusal_error;
                     return toCommandResult(supervisor.domainXml(name));
                   });
  registry.addSync({"vm-undefine", {{"name", ArgType::Str}}},
                   [&supervisor](const JsonValue& args, qmp::Session& session) -> CommandResult {
                     std::string name = stringArg(args, "name");
                     audit(session, "vm-undefine", "name=" + name);
                     if (auto refusal_error = refusal(supervisor, callerOf(session), name)) return *refusal_error;
                     return toCommandResult(supervisor.undefine(name));
                   });
  // Only the caller's VMs (every VM for root).
  registry.addSync({"vm-list", {}, "any"}, [&supervisor](const JsonValue&, qmp::Session& session) -> CommandResult {
    auto rows = supervisor.list();
    if (rows) {
      Owner caller = callerOf(session);
      std::erase_if(*rows, [&caller](const VmSummary& row) { return !mayAccess(caller, row.owner); });
    }
    return toCommandResult(std::move(rows));
  });
  registry.addSync({"vm-info", {{"name", ArgType::Str}}, "any"},
                   [&supervisor](const JsonValue& args, qmp::Session& session) -> CommandResult {
                     std::string name = stringArg(args, "name");
                     if (auto refusal_error = refusal(supervisor, callerOf(session), name)) return *refusal_error;
                     return toCommandResult(supervisor.info(name));
                   });

  registry.add({"vm-start", {{"name", ArgType::Str}}}, [&supervisor](qmp::Request& request) {
    std::string name = stringArg(request.args, "name");
    audit(request.session, "vm-start", "name=" + name);
    if (refused(supervisor, request, name)) return;
    startAsOwner(supervisor, request, name);
  });
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
                 if (refused(supervisor, request, name)) return;
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
                 if (refused(supervisor, request, name)) return;
                 supervisor.agentCommand(name, std::move(*agentRequest), static_cast<uint32_t>(timeout_s * 1000),
                                         deferred<qmp::Json>(request));
               });

  registry.add({"vm-qmp", {{"name", ArgType::Str}, {"command", ArgType::Str}, {"arguments", ArgType::Object, true}}, "any"},
               [&supervisor](qmp::Request& request) {
                 std::string name = stringArg(request.args, "name");
                 std::string command = stringArg(request.args, "command");
                 audit(request.session, "vm-qmp", "name=" + name + " command=" + command);
                 if (refused(supervisor, request, name)) return;
                 auto it = request.args.FindMember("arguments");
                 const JsonValue* arguments = it != request.args.MemberEnd() ? &it->value : nullptr;
                 supervisor.forward(name, command, arguments, deferred<qmp::Json>(request));
               });
  registerMobilityCommands(registry, supervisor);
}

}  // namespace vmmd::daemon
