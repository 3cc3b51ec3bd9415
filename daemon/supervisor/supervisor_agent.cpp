// The guest agent: vm-agent-command's pass-through and vm-shutdown's agent mode.
#include <cerrno>

#include "daemon/supervisor/agent_channel.h"
#include "daemon/supervisor/log.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

// How long guest-shutdown may take to be accepted (the power-off itself has vm-shutdown's timeout).
constexpr AgentChannel::Duration kAgentShutdownTimeout{10000};

// The agent's reply as a command result: its "return" value, its error, or why nobody answered.
qmp::CommandResult agentResult(const std::string& name, Result<qmp::Json>&& reply) {
  if (!reply) {
    // DeviceNotActive (QEMU's class for a device that is there but not usable) lets clients
    // tell "no agent running" from the agent's own errors.
    const char* cls = reply.error().code() == ENOTCONN ? "DeviceNotActive" : "GenericError";
    return qmp::QmpError{cls, vmText(name) + ": " + reply.error().message()};
  }
  if (auto ret = reply->FindMember("return"); ret != reply->MemberEnd()) return qmp::jsonCopy(ret->value);
  auto err = reply->FindMember("error");
  qmp::QmpError error = err->value.IsObject() ? qmp::QmpError::fromJson(err->value)
                                              : qmp::QmpError::generic(qmp::toJson(err->value));
  error.desc = "guest agent: " + error.desc;
  return error;
}

}  // namespace

AgentChannel& Supervisor::agentOf(Vm& vm) {
  if (!vm.agent) vm.agent = std::make_unique<AgentChannel>(loop_, vm.paths.qga_socket);
  return *vm.agent;
}

void Supervisor::agentCommand(const std::string& name, qmp::Json request, uint32_t timeout_ms, Completion done) {
  auto saved = std::make_shared<qmp::Json>(std::move(request));
  withWorker(name, std::move(done), [this, name, saved, timeout_ms](Vm& vm, Completion done) {
    if (!vm.def.agent) {
      return done(qmp::QmpError::generic(vmText(name) + " has no guest agent channel (\"agent\": true in its definition)"));
    }
    agentOf(vm).submit(std::move(*saved), AgentChannel::Duration(timeout_ms),
                       [name, done = std::move(done)](Result<qmp::Json> reply) { done(agentResult(name, std::move(reply))); });
  });
}

void Supervisor::sendAgentShutdown(Vm& vm, VmState before) {
  qmp::Json request = qmp::jsonObject();
  auto& a = request.GetAllocator();
  request.AddMember("execute", "guest-shutdown", a);
  qmp::JsonValue args(rapidjson::kObjectType);
  args.AddMember("mode", "powerdown", a);
  request.AddMember("arguments", args, a);
  std::string name = vm.name();
  // The VM may be gone when the agent answers (it powered off quickly): look it up again.
  agentOf(vm).submit(std::move(request), kAgentShutdownTimeout, [this, name, before](Result<qmp::Json> reply) {
    qmp::CommandResult result = agentResult(name, std::move(reply));
    auto* err = std::get_if<qmp::QmpError>(&result);
    if (!err) return;
    logLine(vmText(name) + ": guest-shutdown failed: " + err->desc);
    if (Vm* vm = active(name); vm && vm->process && !vm->process->exited()) shutdownRequestFailed(*vm, before, *err);
  });
}

}  // namespace vmmd::daemon
