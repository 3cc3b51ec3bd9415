#include "vmm/monitor/query_stats.h"

#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "vmm/monitor/monitored_vm.h"

namespace vmmd {
namespace {

using qmp::ArgType;
using qmp::CommandResult;
using qmp::Json;
using qmp::JsonValue;
using qmp::QmpError;

std::string vcpuQomPath(size_t index) { return "/machine/unattached/device[" + std::to_string(index) + "]"; }

// What the caller asked of the "vmm" provider: nullopt = nothing; an empty set = every name.
struct ProviderFilter {
  std::optional<std::set<std::string>> names;
  bool wants(const std::string& name) const { return names && (names->empty() || names->count(name)); }
};

std::variant<ProviderFilter, QmpError> vmmFilter(const JsonValue& args) {
  if (!args.HasMember("providers")) return ProviderFilter{std::set<std::string>{}};
  ProviderFilter filter;
  for (const auto& request : args["providers"].GetArray()) {
    if (!request.IsObject() || !request.HasMember("provider") || !request["provider"].IsString()) {
      return QmpError::generic("Parameter 'providers' expects a list of StatsRequest");
    }
    std::string provider = std::string(qmp::jsonStringView(request["provider"]));
    if (provider != "kvm" && provider != "vmm") {
      return QmpError::generic("Parameter 'provider' does not accept value '" + provider + "'");
    }
    if (provider != "vmm") continue;
    if (!filter.names) filter.names.emplace();
    if (!request.HasMember("names")) continue;  // every name
    if (!request["names"].IsArray()) return QmpError::generic("Parameter 'names' expects an array");
    for (const auto& name : request["names"].GetArray()) {
      if (!name.IsString()) return QmpError::generic("Parameter 'names' expects a list of strings");
      filter.names->insert(std::string(qmp::jsonStringView(name)));
    }
  }
  return filter;
}

JsonValue statsList(const ExitStats::Snapshot& stats, const ProviderFilter& filter, Json::AllocatorType& alloc) {
  JsonValue list(rapidjson::kArrayType);
  auto add = [&](const std::string& name, uint64_t value) {
    if (!filter.wants(name)) return;
    JsonValue entry(rapidjson::kObjectType);
    entry.AddMember("name", qmp::jsonString(name, alloc), alloc);
    entry.AddMember("value", JsonValue(value), alloc);
    list.PushBack(entry, alloc);
  };
  add("exits", stats.total());
  for (size_t i = 0; i < stats.reasons.size(); ++i) add(exitReasonStatName(static_cast<ExitReason>(i)), stats.reasons[i]);
  for (AddressSpace space : {AddressSpace::Io, AddressSpace::Mmio}) {
    for (const auto& entry : stats.top(space, kQueryStatsTopAddresses)) add(addressStatName(entry), entry.exits);
  }
  add("exits_untracked_address", stats.other_addresses);
  return list;
}

void pushResult(Json& results, JsonValue stats, const std::string* qom_path) {
  auto& alloc = results.GetAllocator();
  JsonValue result(rapidjson::kObjectType);
  result.AddMember("provider", "vmm", alloc);
  if (qom_path) result.AddMember("qom-path", qmp::jsonString(*qom_path, alloc), alloc);
  result.AddMember("stats", stats, alloc);
  results.PushBack(result, alloc);
}

}  // namespace

void registerQueryStats(qmp::CommandRegistry& registry, MonitoredVm& vm) {
  registry.addEnum("StatsTarget", {"vm", "vcpu"});
  registry.addEnum("StatsProvider", {"kvm", "vmm"});
  registry.addObject("StatsRequest", {{"provider", "StatsProvider"}, {"names", "[str]", true}});
  registry.addObject("Stats", {{"name", "str"}, {"value", "any"}});
  registry.addObject("StatsResult", {{"provider", "StatsProvider"}, {"qom-path", "str", true}, {"stats", "[Stats]"}});
  registry.addSync({"query-stats",
                    {{"target", ArgType::Str, false, "StatsTarget"},
                     {"providers", ArgType::Array, true, "[StatsRequest]"},
                     {"vcpus", ArgType::Array, true, "[str]"}},
                    "[StatsResult]"},
                   [&vm](const JsonValue& args, qmp::Session&) -> CommandResult {
                     auto filter = vmmFilter(args);
                     if (auto* error = std::get_if<QmpError>(&filter)) return *error;
                     const auto& wanted = std::get<ProviderFilter>(filter);
                     Json results = qmp::jsonArray();
                     if (!wanted.names) return results;
                     auto per_vcpu = vm.machine().exitStats();
                     if (qmp::jsonStringView(args["target"]) == "vm") {
                       ExitStats::Snapshot whole;
                       for (const auto& stats : per_vcpu) whole.add(stats);
                       pushResult(results, statsList(whole, wanted, results.GetAllocator()), nullptr);
                       return results;
                     }
                     std::optional<std::set<std::string>> paths;
                     if (args.HasMember("vcpus")) {
                       paths.emplace();
                       for (const auto& path : args["vcpus"].GetArray()) {
                         if (!path.IsString()) return QmpError::generic("Parameter 'vcpus' expects a list of strings");
                         paths->insert(std::string(qmp::jsonStringView(path)));
                       }
                     }
                     for (size_t i = 0; i < per_vcpu.size(); ++i) {
                       std::string path = vcpuQomPath(i);
                       if (paths && !paths->count(path)) continue;
                       pushResult(results, statsList(per_vcpu[i], wanted, results.GetAllocator()), &path);
                     }
                     return results;
                   });
}

}  // namespace vmmd
