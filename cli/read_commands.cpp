// list, info, events.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/table.h"

namespace vmmd::cli {
namespace {

std::string uptimeText(const qmp::JsonValue& row) {
  auto it = row.FindMember("uptime");
  if (it == row.MemberEnd() || !it->value.IsInt64()) return "-";
  int64_t s = it->value.GetInt64();
  char buf[32];
  if (s >= 86400) std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(s / 86400), static_cast<long long>(s % 86400 / 3600));
  else std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(s / 3600), static_cast<long long>(s % 3600 / 60), static_cast<long long>(s % 60));
  return buf;
}

int list(const Invocation& inv, qmp::SyncClient& client) {
  if (!inv.args.empty()) return failWith(kUsage, "usage: vmctl list [--json]");
  auto result = call(client, "vm-list");
  if (!result) return kVmmdError;
  if (inv.globals.json) {
    printJson(*result);
    return kOk;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "STATE", "VCPUS", "MEMORY", "UPTIME"}};
  for (const auto& vm : result->GetArray()) {
    rows.push_back({field(vm, "name"), field(vm, "state"), field(vm, "vcpus"), field(vm, "memory") + " MiB", uptimeText(vm)});
  }
  printTable(rows);
  return kOk;
}

int info(const Invocation& inv, qmp::SyncClient& client) {
  if (inv.args.size() != 1) return failWith(kUsage, "usage: vmctl info NAME [--json]");
  auto result = callOnVm(client, "vm-info", inv.args[0]);
  if (!result) return kVmmdError;
  if (inv.globals.json) {
    printJson(*result);
    return kOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const char* key : {"name", "state", "vcpus", "memory", "boot", "autostart", "pid", "uptime", "console", "qmp",
                          "exit-status", "exit-signal", "restart-count", "operation", "snapshots"}) {
    if (!result->HasMember(key)) continue;
    std::string value = std::string(key) == "uptime" ? uptimeText(*result) : field(*result, key);
    if (std::string(key) == "memory") value += " MiB";
    rows.push_back({std::string(key) + ":", value});
  }
  const qmp::JsonValue& def = (*result)["definition"];
  for (const char* key : {"uuid", "kernel", "initrd", "cmdline", "on_crash", "on_poweroff"}) {
    if (def.HasMember(key)) rows.push_back({std::string(key) + ":", field(def, key)});
  }
  printTable(rows);
  return kOk;
}

int events(const Invocation& inv, qmp::SyncClient& client) {
  if (!inv.args.empty()) return failWith(kUsage, "usage: vmctl events [--json]");
  using namespace std::chrono_literals;
  std::fflush(stdout);
  for (;;) {
    auto event = client.readEvent(std::chrono::hours(24 * 365));
    if (!event) return failWith(kUnreachable, "vmmd: " + event.error().message());
    if (inv.globals.json) {
      printJson(*event);
    } else {
      const qmp::JsonValue& data = (*event)["data"];
      if (std::string((*event)["event"].GetString()) == "VM_STATE_CHANGE") {
        std::printf("%s %s %s\n", field(data, "name").c_str(), field(data, "state").c_str(), field(data, "reason").c_str());
      } else {
        printJson(*event);
      }
    }
    std::fflush(stdout);
  }
}

}  // namespace

int runReadCommand(const Invocation& inv) {
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  if (inv.command == "list") return list(inv, *conn.client);
  if (inv.command == "info") return info(inv, *conn.client);
  return events(inv, *conn.client);
}

}  // namespace vmmd::cli
