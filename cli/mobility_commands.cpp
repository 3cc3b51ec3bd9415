// snapshot save|list|revert|delete, migrate, migrate-cancel, migrate-status.
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/table.h"
#include "base/migration_destination.h"

namespace vmmd::cli {
namespace {

qmp::Json vmArgs(const std::string& name, const char* key = nullptr, const std::string& value = {}) {
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  args.AddMember("name", qmp::jsonString(name, a), a);
  if (key) args.AddMember(qmp::JsonValue(key, a), qmp::jsonString(value, a), a);
  return args;
}

bool looksLikeOption(const std::string& arg) { return arg.rfind("-", 0) == 0; }

std::string localTime(int64_t unix_us) {
  std::time_t t = static_cast<std::time_t>(unix_us / 1000000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string sizeText(int64_t bytes) {
  char buf[32];
  if (bytes >= (int64_t{1} << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  return buf;
}

int snapshotList(const Invocation& inv, const std::string& name) {
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  auto result = callOnVm(*conn.client, "vm-snapshot-list", name);
  if (!result) return kVmmdError;
  if (inv.globals.json) {
    printJson(*result);
    return kOk;
  }
  std::vector<std::vector<std::string>> rows = {{"TAG", "DATE", "STATE SIZE", "DISKS"}};
  for (const auto& s : result->GetArray()) {
    std::string disks;
    if (s.HasMember("disks") && s["disks"].IsArray()) {
      for (const auto& d : s["disks"].GetArray()) disks += (disks.empty() ? "" : ",") + std::string(d.GetString());
    }
    rows.push_back({field(s, "tag"), s["time-us"].IsInt64() ? localTime(s["time-us"].GetInt64()) : "-",
                    s["state-bytes"].IsInt64() ? sizeText(s["state-bytes"].GetInt64()) : "-", disks.empty() ? "-" : disks});
  }
  printTable(rows);
  return kOk;
}

int snapshot(const Invocation& inv) {
  const std::string usage = "usage: vmctl snapshot save|revert|delete NAME TAG | vmctl snapshot list NAME [--json]";
  if (inv.args.empty()) return failWith(kUsage, usage);
  const std::string& action = inv.args[0];
  for (const std::string& a : inv.args) {
    if (looksLikeOption(a)) return failWith(kUsage, usage);
  }
  if (action == "list") {
    if (inv.args.size() != 2) return failWith(kUsage, usage);
    return snapshotList(inv, inv.args[1]);
  }
  if ((action != "save" && action != "revert" && action != "delete") || inv.args.size() != 3) return failWith(kUsage, usage);
  const std::string& name = inv.args[1];
  const std::string& tag = inv.args[2];
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  qmp::Json args = vmArgs(name, "tag", tag);
  auto result = call(*conn.client, "vm-snapshot-" + action, &args);
  if (!result) return kVmmdError;
  if (inv.globals.json) {
    printJson(*result);
    return kOk;
  }
  if (action == "save") {
    std::printf("%s: snapshot '%s' saved (state %s in %s)\n", name.c_str(), tag.c_str(),
                (*result)["state-bytes"].IsInt64() ? sizeText((*result)["state-bytes"].GetInt64()).c_str() : "-",
                field(*result, "state-file").c_str());
  } else {
    std::printf("%s: snapshot '%s' %s\n", name.c_str(), tag.c_str(), action == "revert" ? "reverted; the guest runs from it" : "deleted");
  }
  return kOk;
}

// The ram statistics of a query-migrate answer, for people.
std::string migrationSummary(const qmp::JsonValue& status) {
  if (!status.IsObject()) return "";
  std::string out = field(status, "status");
  if (status.HasMember("ram") && status["ram"].IsObject()) {
    const auto& ram = status["ram"];
    if (ram.HasMember("transferred") && ram["transferred"].IsInt64()) out += ", " + sizeText(ram["transferred"].GetInt64()) + " sent";
    if (ram.HasMember("remaining") && ram["remaining"].IsInt64()) out += ", " + sizeText(ram["remaining"].GetInt64()) + " remaining";
  }
  for (const char* key : {"total-time", "downtime"}) {
    if (status.HasMember(key) && status[key].IsInt64()) out += ", " + std::string(key) + " " + std::to_string(status[key].GetInt64()) + " ms";
  }
  return out;
}

int migrate(const Invocation& inv) {
  const std::string usage =
      "usage: vmctl migrate NAME --to SOCKET|HOST|ssh://[USER@]HOST[:PORT][?socket=PATH&keyfile=PATH&known_hosts=PATH&no_verify=1&vmctl=PATH]";
  std::string name, destination;
  for (size_t i = 0; i < inv.args.size(); ++i) {
    const std::string& a = inv.args[i];
    if (a == "--to" && i + 1 < inv.args.size()) destination = inv.args[++i];
    else if (a.rfind("--to=", 0) == 0) destination = a.substr(5);
    else if (looksLikeOption(a) || !name.empty()) return failWith(kUsage, usage);
    else name = a;
  }
  if (name.empty() || destination.empty()) return failWith(kUsage, usage);
  // Read here, where a relative path or a bare name means something (this directory): vmmd gets
  // an absolute socket path or an ssh:// URI.
  auto parsed = parseMigrationDestination(destination);
  if (!parsed) return failWith(kUsage, parsed.error().message());
  if (const auto* local = std::get_if<LocalDestination>(&*parsed)) destination = local->socket;
  else if (destination.rfind("ssh://", 0) != 0) destination = "ssh://" + destination;
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  qmp::Json args = vmArgs(name, "destination", destination);
  auto result = call(*conn.client, "vm-migrate", &args);
  if (!result) return kVmmdError;
  if (inv.globals.json) {
    printJson(*result);
    return kOk;
  }
  std::string summary = result->HasMember("migration") ? migrationSummary((*result)["migration"]) : "";
  std::printf("%s moved to %s%s\n", name.c_str(), describeDestination(*parsed).c_str(),
              summary.empty() ? "" : (" (" + summary + ")").c_str());
  return kOk;
}

int migrateOnVm(const Invocation& inv) {
  if (inv.args.size() != 1 || looksLikeOption(inv.args[0])) return failWith(kUsage, "usage: vmctl " + inv.command + " NAME");
  const std::string& name = inv.args[0];
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  auto result = callOnVm(*conn.client, "vm-" + inv.command, name);
  if (!result) return kVmmdError;
  if (inv.globals.json) {
    printJson(*result);
  } else if (inv.command == "migrate-cancel") {
    std::printf("%s: migration cancelled\n", name.c_str());
  } else {
    std::string phase = field(*result, "phase");
    if (phase == "none") std::printf("%s: no migration in progress\n", name.c_str());
    else std::printf("%s: %s to %s (%s)\n", name.c_str(), phase.c_str(), field(*result, "destination").c_str(),
                     migrationSummary((*result)["migration"]).c_str());
  }
  return kOk;
}

}  // namespace

int runMobilityCommand(const Invocation& inv) {
  if (inv.command == "snapshot") return snapshot(inv);
  if (inv.command == "migrate") return migrate(inv);
  return migrateOnVm(inv);
}

}  // namespace vmmd::cli
