#include "cli/agent_target.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace vmmd::cli {
namespace {

using Millis = std::chrono::milliseconds;

// The longest vmctl waits for a busy agent socket to accept it (exec's own timeout may be hours).
constexpr double kConnectBusyWaitS = 10;

Millis toMillis(Seconds s) { return std::max(Millis(1), std::chrono::duration_cast<Millis>(s)); }

}  // namespace

Result<AgentArgs> parseAgentArgs(const std::vector<std::string>& args) {
  AgentArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.dash_dash = true;
      out.dash_dash_at = out.rest.size();
      out.rest.insert(out.rest.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (a == "--socket" || a == "--timeout") {
      if (i + 1 >= args.size()) return Error(a + " needs a value");
      const std::string& v = args[++i];
      if (a == "--socket") {
        out.socket = v;
        continue;
      }
      char* end = nullptr;
      double s = std::strtod(v.c_str(), &end);
      if (*end != '\0' || !(s > 0 && s <= 86400)) return Error("--timeout: expected seconds (0 < S <= 86400), got '" + v + "'");
      out.timeout_s = s;
      continue;
    }
    if (a.size() > 1 && a[0] == '-') return Error("unknown option '" + a + "'");
    out.rest.push_back(a);
  }
  return out;
}

std::optional<AgentTarget> AgentTarget::open(const Globals& globals, const AgentArgs& args, const std::string& name,
                                             int& exit_code) {
  AgentTarget target;
  if (args.socket) {
    // A busy agent (its listen queue full) is waited for as long as the sync would be.
    Seconds busy_wait(std::min(args.timeout_s.value_or(kConnectBusyWaitS), kConnectBusyWaitS));
    auto agent = qmp::AgentClient::connect(*args.socket, toMillis(busy_wait));
    if (!agent) {
      exit_code = failWith(agent.error().code() == ENOTCONN ? kAgentUnavailable : kLocalError, agent.error().message());
      return std::nullopt;
    }
    target.agent_.emplace(std::move(*agent));
    return target;
  }
  Connection conn = connectToVmmd(globals);
  if (!conn.client) {
    exit_code = conn.exit_code;
    return std::nullopt;
  }
  target.vm_ = name;
  target.vmmd_.emplace(std::move(*conn.client));
  return target;
}

Result<qmp::Json> AgentTarget::request(const qmp::JsonValue& request, Seconds timeout) {
  last_exit_code_ = kOk;
  if (agent_) {
    auto reply = agent_->request(request, toMillis(timeout));
    if (!reply) {
      last_exit_code_ = kAgentUnavailable;  // not connected, no answer in time, or the channel broke
      return reply;
    }
    if (auto ret = reply->FindMember("return"); ret != reply->MemberEnd()) return qmp::jsonCopy(ret->value);
    const qmp::JsonValue& err = (*reply)["error"];
    last_exit_code_ = kVmmdError;
    std::string desc = err.IsObject() ? qmp::QmpError::fromJson(err).desc : qmp::toJson(err);
    return Error("guest agent: " + desc);
  }
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  args.AddMember("name", qmp::jsonString(vm_, a), a);
  args.AddMember("command", qmp::JsonValue(request, a), a);
  args.AddMember("timeout", timeout.count(), a);
  // vmmd answers by the agent timeout plus its sync; the margin keeps its answer ahead of ours.
  auto result = vmmd_->execute("vm-agent-command", &args, toMillis(timeout + Seconds(30)));
  if (result) return result;
  const auto& qmpError = vmmd_->lastError();
  if (!qmpError) last_exit_code_ = kUnreachable;
  else if (qmpError->errorClass == "DeviceNotActive") last_exit_code_ = kAgentUnavailable;
  else last_exit_code_ = kVmmdError;
  return result;
}

Result<qmp::Json> AgentTarget::execute(std::string_view command, const qmp::JsonValue* args, Seconds timeout) {
  qmp::Json request = qmp::jsonObject();
  auto& a = request.GetAllocator();
  request.AddMember("execute", qmp::jsonString(command, a), a);
  if (args) request.AddMember("arguments", qmp::JsonValue(*args, a), a);
  return this->request(request, timeout);
}

}  // namespace vmmd::cli
