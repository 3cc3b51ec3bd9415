#include "vmm/monitor/qmp_migration.h"

#include "vmm/monitor/monitored_vm.h"

namespace vmmd {
namespace {

using qmp::ArgType;
using qmp::CommandResult;
using qmp::Json;
using qmp::JsonValue;
using qmp::QmpError;

void registerSchema(qmp::CommandRegistry& registry) {
  registry.addEnum("MigrationStatus", {"none", "setup", "cancelling", "cancelled", "active", "postcopy-active",
                                       "postcopy-paused", "postcopy-recover", "completed", "failed", "colo",
                                       "pre-switchover", "device", "wait-unplug"});
  registry.addObject("MigrationStats", {{"transferred", "int"}, {"remaining", "int"}, {"total", "int"}, {"duplicate", "int"},
                                        {"skipped", "int"}, {"normal", "int"}, {"normal-bytes", "int"},
                                        {"dirty-pages-rate", "int"}, {"mbps", "number"}, {"dirty-sync-count", "int"},
                                        {"postcopy-requests", "int"}, {"page-size", "int"}, {"multifd-bytes", "int"},
                                        {"pages-per-second", "int"}, {"precopy-bytes", "int"}, {"downtime-bytes", "int"},
                                        {"postcopy-bytes", "int"}, {"dirty-sync-missed-zero-copy", "int"}});
  registry.addObject("MigrationInfo", {{"status", "MigrationStatus", true}, {"ram", "MigrationStats", true},
                                       {"total-time", "int", true}, {"expected-downtime", "int", true},
                                       {"downtime", "int", true}, {"setup-time", "int", true},
                                       {"error-desc", "str", true}});
  std::vector<std::string> names = migration::capabilityNames();
  registry.addEnum("MigrationCapability", names);
  registry.addObject("MigrationCapabilityStatus", {{"capability", "MigrationCapability"}, {"state", "bool"}});
  registry.addObject("MigrationParameters", {{"downtime-limit", "int", true}, {"max-bandwidth", "int", true}});
  registry.addEvent("MIGRATION", {{"status", "MigrationStatus"}});
  registry.addEvent("MIGRATION_PASS", {{"pass", "int"}});
}

}  // namespace

Json migrationInfoJson(const migration::MigrationInfo& info) {
  using migration::MigrationStatus;
  Json out = qmp::jsonObject();
  auto& alloc = out.GetAllocator();
  if (info.status == MigrationStatus::None) return out;  // QEMU: {} before the first migration
  out.AddMember("status", rapidjson::StringRef(migration::statusName(info.status)), alloc);
  bool ram = info.status == MigrationStatus::Active || info.status == MigrationStatus::Completed || info.status == MigrationStatus::Device ||
             info.status == MigrationStatus::Cancelling;
  if (info.outgoing && info.status != MigrationStatus::Setup) {
    out.AddMember("total-time", info.total_ms, alloc);
    out.AddMember("setup-time", info.setup_ms, alloc);
    if (info.status == MigrationStatus::Completed) out.AddMember("downtime", info.downtime_ms, alloc);
    if (info.status == MigrationStatus::Active) out.AddMember("expected-downtime", info.expected_downtime_ms, alloc);
  }
  if (ram && info.outgoing) {
    const auto& r = info.ram;
    JsonValue stats(rapidjson::kObjectType);
    stats.AddMember("transferred", r.transferred, alloc);
    stats.AddMember("remaining", r.remaining, alloc);
    stats.AddMember("total", r.total, alloc);
    stats.AddMember("duplicate", r.duplicate, alloc);
    stats.AddMember("skipped", 0, alloc);
    stats.AddMember("normal", r.normal, alloc);
    stats.AddMember("normal-bytes", r.normal * 4096, alloc);
    stats.AddMember("dirty-pages-rate", r.dirty_pages_rate, alloc);
    stats.AddMember("mbps", r.mbps, alloc);
    stats.AddMember("dirty-sync-count", r.dirty_sync_count, alloc);
    stats.AddMember("postcopy-requests", 0, alloc);
    stats.AddMember("page-size", 4096, alloc);
    stats.AddMember("multifd-bytes", 0, alloc);
    stats.AddMember("pages-per-second", r.pages_per_second, alloc);
    stats.AddMember("precopy-bytes", r.precopy_bytes, alloc);
    stats.AddMember("downtime-bytes", r.downtime_bytes, alloc);
    stats.AddMember("postcopy-bytes", 0, alloc);
    stats.AddMember("dirty-sync-missed-zero-copy", 0, alloc);
    out.AddMember("ram", stats, alloc);
  }
  if (info.status == MigrationStatus::Failed && !info.error.empty()) out.AddMember("error-desc", qmp::jsonString(info.error, alloc), alloc);
  return out;
}

void registerMigrationCommands(qmp::CommandRegistry& registry, MonitoredVm& vm) {
  registerSchema(registry);
  registry.addSync({"migrate",
                    {{"uri", ArgType::Str},
                     {"blk", ArgType::Bool, true},
                     {"inc", ArgType::Bool, true},
                     {"detach", ArgType::Bool, true},
                     {"resume", ArgType::Bool, true}}},
                   [&vm](const JsonValue& args, qmp::Session&) -> CommandResult {
                     for (const char* flag : {"blk", "inc"}) {
                       if (args.HasMember(flag) && args[flag].GetBool()) {
                         return QmpError::generic("Block migration (" + std::string(flag) + ") is not supported by vmm");
                       }
                     }
                     if (args.HasMember("resume") && args["resume"].GetBool()) {
                       return QmpError::generic("Cannot resume if there is no paused migration");
                     }
                     if (vm.state() == RunState::Inmigrate) return QmpError::generic("Guest is waiting for an incoming migration");
                     auto st = vm.migration().startOutgoing(std::string(qmp::jsonStringView(args["uri"])));
                     if (!st) return QmpError::generic(st.error().message());
                     return qmp::jsonObject();
                   });
  registry.addSync({"migrate-incoming", {{"uri", ArgType::Str}}}, [&vm](const JsonValue& args, qmp::Session&) -> CommandResult {
    // QEMU: no -incoming at all, or one with a URI (whose migration is already under way).
    if (vm.config().incoming.empty()) return QmpError::generic("'-incoming' was not specified on the command line");
    auto st = vm.migration().startIncoming(std::string(qmp::jsonStringView(args["uri"])));
    if (!st) return QmpError::generic(st.error().message());
    return qmp::jsonObject();
  });
  registry.addSync({"migrate_cancel"}, [&vm](const JsonValue&, qmp::Session&) -> CommandResult {
    vm.migration().cancel();
    return qmp::jsonObject();
  });
  registry.addSync({"query-migrate", {}, "MigrationInfo"},
                   [&vm](const JsonValue&, qmp::Session&) -> CommandResult { return migrationInfoJson(vm.migration().info()); });
  registry.addSync({"query-migrate-capabilities", {}, "[MigrationCapabilityStatus]"},
                   [&vm](const JsonValue&, qmp::Session&) -> CommandResult {
                     Json list = qmp::jsonArray();
                     auto& alloc = list.GetAllocator();
                     for (const auto& name : migration::capabilityNames()) {
                       JsonValue entry(rapidjson::kObjectType);
                       entry.AddMember("state", vm.migration().capability(name), alloc);
                       entry.AddMember("capability", qmp::jsonString(name, alloc), alloc);
                       list.PushBack(entry, alloc);
                     }
                     return list;
                   });
  registry.addSync({"migrate-set-capabilities", {{"capabilities", ArgType::Array, false, "[MigrationCapabilityStatus]"}}},
                   [&vm](const JsonValue& args, qmp::Session&) -> CommandResult {
                     // Checked whole first: a list with one bad entry changes nothing.
                     std::vector<std::pair<std::string, bool>> wanted;
                     for (const auto& entry : args["capabilities"].GetArray()) {
                       if (!entry.IsObject()) return QmpError::generic("Invalid parameter type for 'capabilities[0]', expected: object");
                       auto capability = entry.FindMember("capability");
                       auto state = entry.FindMember("state");
                       if (capability == entry.MemberEnd() || !capability->value.IsString()) {
                         return QmpError::generic("Parameter 'capability' is missing");
                       }
                       if (state == entry.MemberEnd() || !state->value.IsBool()) return QmpError::generic("Parameter 'state' is missing");
                       wanted.emplace_back(std::string(qmp::jsonStringView(capability->value)), state->value.GetBool());
                     }
                     auto& manager = vm.migration();
                     for (const auto& [name, on] : wanted) {
                       if (auto st = manager.checkCapability(name, on); !st) return QmpError::generic(st.error().message());
                     }
                     for (const auto& [name, on] : wanted) {
                       if (auto st = manager.setCapability(name, on); !st) return QmpError::generic(st.error().message());
                     }
                     return qmp::jsonObject();
                   });
  registry.addSync({"query-migrate-parameters", {}, "MigrationParameters"}, [&vm](const JsonValue&, qmp::Session&) -> CommandResult {
    auto parameters = vm.migration().parameters();
    Json out = qmp::jsonObject();
    out.AddMember("downtime-limit", parameters.downtime_limit_ms, out.GetAllocator());
    out.AddMember("max-bandwidth", parameters.max_bandwidth, out.GetAllocator());
    return out;
  });
  registry.addSync({"migrate-set-parameters", {{"downtime-limit", ArgType::Int, true}, {"max-bandwidth", ArgType::Int, true}}},
                   [&vm](const JsonValue& args, qmp::Session&) -> CommandResult {
                     auto& manager = vm.migration();
                     // Both checked before either is set.
                     if (args.HasMember("downtime-limit")) {
                       if (!args["downtime-limit"].IsUint64() || args["downtime-limit"].GetUint64() > 2000 * 1000) {
                         return QmpError::generic("Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms");
                       }
                     }
                     if (args.HasMember("max-bandwidth") && !args["max-bandwidth"].IsUint64()) {
                       return QmpError::generic("Parameter 'max_bandwidth' expects an integer in the range of 0 to 18446744073709551615 bytes/second");
                     }
                     if (args.HasMember("downtime-limit")) (void)manager.setDowntimeLimit(args["downtime-limit"].GetUint64());
                     if (args.HasMember("max-bandwidth")) (void)manager.setMaxBandwidth(args["max-bandwidth"].GetUint64());
                     return qmp::jsonObject();
                   });
}

}  // namespace vmmd
