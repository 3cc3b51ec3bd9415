// agent NAME JSON / agent --socket PATH JSON: one guest-agent command, raw (as libvirt's
// qemu-agent-command); prints the "return" value as JSON.
#include <cstdio>

#include "cli/agent_target.h"

namespace vmmd::cli {

constexpr double kDefaultAgentTimeoutS = 10;

int runAgentCommand(const Invocation& inv) {
  const char* usage = "usage: vmctl agent [--timeout S] NAME JSON | vmctl agent --socket PATH [--timeout S] JSON";
  auto args = parseAgentArgs(inv.args);
  if (!args) return failWith(kUsage, "agent: " + args.error().message());
  size_t want = args->socket ? 1 : 2;
  if (args->rest.size() != want || args->dash_dash) return failWith(kUsage, usage);
  const std::string& text = args->rest.back();
  auto request = qmp::parseJson(text);
  if (!request) return failWith(kUsage, "agent: not valid JSON: " + request.error().message());
  if (!request->IsObject() || !request->HasMember("execute") || !(*request)["execute"].IsString()) {
    return failWith(kUsage, R"(agent: expected {"execute": "guest-...", "arguments": {...}})");
  }
  int exit_code = kOk;
  auto target = AgentTarget::open(inv.globals, *args, args->socket ? "" : args->rest[0], exit_code);
  if (!target) return exit_code;
  auto result = target->request(*request, Seconds(args->timeout_s.value_or(kDefaultAgentTimeoutS)));
  if (!result) return failWith(target->lastExitCode(), result.error().message());
  printJson(*result);
  return kOk;
}

}  // namespace vmmd::cli
