// qmp NAME JSON: one command through vmmd to the VM's worker ({"execute": ..., "arguments": ...}).
#include <cstdio>

#include "cli/cli.h"

namespace vmmd::cli {

int runQmpCommand(const Invocation& inv) {
  if (inv.args.size() != 2) return failWith(kUsage, "usage: vmctl qmp NAME '{\"execute\": COMMAND, \"arguments\": {...}}'");
  auto request = qmp::parseJson(inv.args[1]);
  if (!request) return failWith(kUsage, "qmp: not valid JSON: " + request.error().message());
  if (!request->IsObject() || !request->HasMember("execute") || !(*request)["execute"].IsString()) {
    return failWith(kUsage, "qmp: expected an object with \"execute\": \"command-name\"");
  }
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  args.AddMember("name", qmp::jsonString(inv.args[0], a), a);
  args.AddMember("command", qmp::JsonValue((*request)["execute"], a), a);
  if (request->HasMember("arguments")) args.AddMember("arguments", qmp::JsonValue((*request)["arguments"], a), a);
  auto result = call(*conn.client, "vm-qmp", &args);
  if (!result) return kVmmdError;
  printJson(*result);
  return kOk;
}

}  // namespace vmmd::cli
