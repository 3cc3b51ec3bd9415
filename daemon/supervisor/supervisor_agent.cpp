// The guest agent: vm-agent-command's pass-through and vm-shutdown's agent mode.
#include <cerrno>

#include "base/log.h"
#include "daemon/supervisor/agent_channel.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

// How long guest-shutdown may take to be accepted (the power-off itself has vm-shutdown's timeout).
constexpr AgentChannel::Duration kAgentShutdownTimeout{10000};

// The agent's reply as a command result: its "return" value, its error, or why nobody answered.
VmResult<qmp::Json> agentResult(const std::string& name, Result<qmp::Json>&& reply) {
  if (!reply) {
    // "No agent running" is told apart from the agent's own errors.
    VmErrorCode code = reply.error().code() == ENOTCONN ? VmErrorCode::kAgentNotConnected : VmErrorCode::kWorkerFailed;
    return vmError(code, vmText(name) + ": " + reply.error().message());
  }
  if (auto ret = reply->FindMember("return"); ret != reply->MemberEnd()) return qmp::jsonCopy(ret->value);
  auto err = reply->FindMember("error");
  qmp::QmpError error = err->value.IsObject() ? qmp::QmpError::fromJson(err->value)
                                              : qmp::QmpError::generic(qmp::toJson(err->value));
  return VmError{VmErrorCode::kWorkerRefused, "guest agent: " + error.desc, error.errorClass};
}

}  // namespace

AgentChannel& Supervisor::agentOf(Vm& vm) {
  if (!vm.agent) vm.agent = std::make_unique<AgentChannel>(loop_, vm.paths.qga_socket);
  return *vm.agent;
}

void Supervisor::agentCommand(const std::string& name, qmp::Json request, uint32_t timeout_ms, Completion<qmp::Json> done) {
  auto saved = std::make_shared<qmp::Json>(std::move(request));
  withWorker(name, failTo(done), [this, name, saved, timeout_ms, done](Vm& vm) {
    if (!vm.def.agent) return done(noAgentChannel(name));
    agentOf(vm).submit(std::move(*saved), AgentChannel::Duration(timeout_ms),
                       [name, done = std::move(done)](Result<qmp::Json> reply) { done(agentResult(name, std::move(reply))); });
  });
}

void Supervisor::sendAgentShutdown(Vm& vm) {
  qmp::Json request = qmp::jsonObject();
  auto& a = request.GetAllocator();
  request.AddMember("execute", "guest-shutdown", a);
  qmp::JsonValue args(rapidjson::kObjectType);
  args.AddMember("mode", "powerdown", a);
  request.AddMember("arguments", args, a);
  std::string name = vm.name();
  // The VM may be gone when the agent answers (it powered off quickly): look it up again.
  agentOf(vm).submit(std::move(request), kAgentShutdownTimeout, [this, name](Result<qmp::Json> reply) {
    auto result = agentResult(name, std::move(reply));
    if (result) return;
    log::error(vmText(name) + ": guest-shutdown failed: " + result.error().message);
    if (Vm* vm = active(name); vm && vm->process && !vm->process->exited()) shutdownRequestFailed(*vm, result.error());
  });
}

}  // namespace vmmd::daemon
