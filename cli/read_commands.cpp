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

// The IPv4 addresses of a vm-list row's NICs, comma-separated; "-" when none is known.
std::string addressesText(const qmp::JsonValue& row) {
  std::string out;
  auto nics = row.FindMember("nics");
  if (nics != row.MemberEnd() && nics->value.IsArray()) {
    for (const auto& nic : nics->value.GetArray()) {
      std::string ipv4 = nic.IsObject() ? field(nic, "ipv4") : "-";
      if (ipv4 == "-") continue;
      out += (out.empty() ? "" : ",") + ipv4;
    }
  }
  return out.empty() ? "-" : out;
}

// One NIC for `vmctl info`: "52:54:00:12:34:56 network default (tap vmmdt0) 192.168.124.5 (dhcp-lease)".
std::string nicText(const qmp::JsonValue& nic) {
  std::string where = nic.HasMember("network") ? "network " + field(nic, "network") : "tap " + field(nic, "ifname");
  if (nic.HasMember("tap")) where += " (tap " + field(nic, "tap") + ")";
  std::string text = field(nic, "mac") + " " + where;
  if (nic.HasMember("ipv4")) text += " " + field(nic, "ipv4") + " (" + field(nic, "source") + ")";
  return text;
}

int list(const Invocation& inv, qmp::SyncClient& client) {
  if (!inv.args.empty()) return failWith(kUsage, "usage: vmctl list [--json]");
  auto result = call(client, "vm-list");
  if (!result) return kVmmdError;
  if (inv.globals.json) {
    printJson(*result);
    return kOk;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "STATE", "VCPUS", "MEMORY", "UPTIME", "IPV4"}};
  for (const auto& vm : result->GetArray()) {
    rows.push_back({field(vm, "name"), field(vm, "state"), field(vm, "vcpus"), field(vm, "memory") + " MiB", uptimeText(vm),
                    addressesText(vm)});
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
  if (auto nics = result->FindMember("nics"); nics != result->MemberEnd() && nics->value.IsArray()) {
    size_t index = 0;
    for (const auto& nic : nics->value.GetArray()) {
      if (nic.IsObject()) rows.push_back({"nic" + std::to_string(index) + ":", nicText(nic)});
      ++index;
    }
  }
  const qmp::JsonValue& def = (*result)["definition"];
  for (const char* key : {"uuid", "machine", "kernel", "initrd", "cmdline", "on_crash", "on_poweroff"}) {
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
