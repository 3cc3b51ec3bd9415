// The network commands: net-define, net-undefine, net-start, net-stop, net-list, net-info,
// net-autostart (vmmd's net-* control commands, root's alone).
#include <cstdio>
#include <string>

#include "cli/cli.h"

namespace vmmd::cli {
namespace {

std::string text(const qmp::JsonValue& object, const char* key) {
  auto it = object.FindMember(key);
  if (it == object.MemberEnd()) return "-";
  if (it->value.IsString()) return std::string(qmp::jsonStringView(it->value));
  if (it->value.IsNull()) return "-";
  return qmp::toJson(it->value);
}

int netDefine(const Invocation& inv) {
  if (inv.args.size() != 1) return failWith(kUsage, "usage: vmctl net-define FILE");
  auto file = readDefinitionFile(inv.args[0]);
  if (!file) return failWith(kLocalError, file.error().message());
  auto def = qmp::parseJson(*file);
  if (!def) return failWith(kLocalError, inv.args[0] + ": not valid JSON: " + def.error().message());
  if (!def->IsObject()) return failWith(kLocalError, inv.args[0] + ": a network definition is a JSON object");
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  args.AddMember("definition", qmp::JsonValue(*def, a), a);
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  if (!call(*conn.client, "net-define", &args)) return kVmmdError;
  std::printf("network %s defined\n", text(*def, "name").c_str());
  return kOk;
}

int netList(const Invocation& inv) {
  if (!inv.args.empty()) return failWith(kUsage, "usage: vmctl net-list [--json]");
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  auto rows = call(*conn.client, "net-list");
  if (!rows) return kVmmdError;
  if (inv.globals.json) {
    printJson(*rows);
    return kOk;
  }
  std::printf("%-16s %-9s %-9s %-15s %-18s %s\n", "NAME", "STATE", "MODE", "BRIDGE", "SUBNET", "AUTOSTART");
  for (const auto& row : rows->GetArray()) {
    std::string subnet = text(row, "subnet");
    std::printf("%-16s %-9s %-9s %-15s %-18s %s\n", text(row, "name").c_str(), text(row, "state").c_str(),
                text(row, "mode").c_str(), text(row, "bridge").c_str(), subnet.empty() ? "-" : subnet.c_str(),
                text(row, "autostart") == "true" ? "yes" : "no");
  }
  return kOk;
}

int netInfo(const Invocation& inv) {
  if (inv.args.size() != 1 || inv.args[0].rfind("-", 0) == 0) return failWith(kUsage, "usage: vmctl net-info NAME [--json]");
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  auto info = callOnVm(*conn.client, "net-info", inv.args[0]);
  if (!info) return kVmmdError;
  if (inv.globals.json) {
    printJson(*info);
    return kOk;
  }
  const auto& def = (*info)["definition"];
  std::printf("name:       %s\nstate:      %s\nmode:       %s\nbridge:     %s\nautostart:  %s\n", text(*info, "name").c_str(),
              text(*info, "state").c_str(), text(*info, "mode").c_str(), text(*info, "bridge").c_str(),
              text(*info, "autostart") == "true" ? "yes" : "no");
  if (def.HasMember("ipv4")) {
    const auto& ipv4 = def["ipv4"];
    std::printf("ipv4:       %s/%s\n", text(ipv4, "address").c_str(), text(ipv4, "prefix").c_str());
    if (ipv4.HasMember("dhcp")) {
      std::printf("dhcp:       %s - %s\n", text(ipv4["dhcp"], "start").c_str(), text(ipv4["dhcp"], "end").c_str());
    }
  }
  if (def.HasMember("domain")) std::printf("domain:     %s\n", text(def, "domain").c_str());
  if (info->HasMember("dnsmasq")) {
    std::printf("dnsmasq:    pid %s, %s restarts\n", text((*info)["dnsmasq"], "pid").c_str(),
                text((*info)["dnsmasq"], "restarts").c_str());
    for (const auto& lease : (*info)["static_leases"].GetArray()) {
      std::printf("static:     %s %s %s\n", text(lease, "mac").c_str(), text(lease, "ipv4").c_str(), text(lease, "vm").c_str());
    }
    for (const auto& lease : (*info)["leases"].GetArray()) {
      std::string host = text(lease, "hostname");
      std::printf("lease:      %s %s %s\n", text(lease, "mac").c_str(), text(lease, "ipv4").c_str(), host.empty() ? "-" : host.c_str());
    }
  }
  return kOk;
}

int netAutostart(const Invocation& inv) {
  std::string name;
  bool enabled = true;
  for (const auto& arg : inv.args) {
    if (arg == "--disable") enabled = false;
    else if (arg.rfind("-", 0) == 0 || !name.empty()) return failWith(kUsage, "usage: vmctl net-autostart NAME [--disable]");
    else name = arg;
  }
  if (name.empty()) return failWith(kUsage, "usage: vmctl net-autostart NAME [--disable]");
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  args.AddMember("name", qmp::jsonString(name, a), a);
  args.AddMember("enabled", enabled, a);
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  if (!call(*conn.client, "net-autostart", &args)) return kVmmdError;
  std::printf("network %s %s\n", name.c_str(), enabled ? "starts with vmmd" : "no longer starts with vmmd");
  return kOk;
}

}  // namespace

int runNetCommand(const Invocation& inv) {
  if (inv.command == "net-define") return netDefine(inv);
  if (inv.command == "net-list") return netList(inv);
  if (inv.command == "net-info") return netInfo(inv);
  if (inv.command == "net-autostart") return netAutostart(inv);
  static const std::pair<const char*, const char*> simple[] = {
      {"net-undefine", "undefined"}, {"net-start", "started"}, {"net-stop", "stopped"}};
  for (auto [command, done] : simple) {
    if (inv.command != command) continue;
    if (inv.args.size() != 1 || inv.args[0].rfind("-", 0) == 0) return failWith(kUsage, std::string("usage: vmctl ") + command + " NAME");
    auto conn = connectToVmmd(inv.globals);
    if (!conn.client) return conn.exit_code;
    if (!callOnVm(*conn.client, command, inv.args[0])) return kVmmdError;
    std::printf("network %s %s\n", inv.args[0].c_str(), done);
    return kOk;
  }
  return failWith(kUsage, "unknown command '" + inv.command + "' (see vmctl --help)");
}

}  // namespace vmmd::cli
