#include "vmm/monitor/query_stats.h"

#include <map>
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

// What the caller asked of each provider: absent = nothing; an empty set = every name.
struct ProviderFilter {
  std::map<std::string, std::set<std::string>> providers;
  bool asked(const std::string& provider) const { return providers.count(provider) != 0; }
  bool wants(const std::string& provider, const std::string& name) const {
    auto it = providers.find(provider);
    return it != providers.end() && (it->second.empty() || it->second.count(name));
  }
};

std::variant<ProviderFilter, QmpError> providerFilter(const JsonValue& args) {
  ProviderFilter filter;
  if (!args.HasMember("providers")) {
    filter.providers = {{"kvm", {}}, {"vmm", {}}};
    return filter;
  }
  for (const auto& request : args["providers"].GetArray()) {
    if (!request.IsObject() || !request.HasMember("provider") || !request["provider"].IsString()) {
      return QmpError::generic("Parameter 'providers' expects a list of StatsRequest");
    }
    std::string provider = std::string(qmp::jsonStringView(request["provider"]));
    if (provider != "kvm" && provider != "vmm") {
      return QmpError::generic("Parameter 'provider' does not accept value '" + provider + "'");
    }
    auto& names = filter.providers[provider];
    if (!request.HasMember("names")) continue;  // every name
    if (!request["names"].IsArray()) return QmpError::generic("Parameter 'names' expects an array");
    for (const auto& name : request["names"].GetArray()) {
      if (!name.IsString()) return QmpError::generic("Parameter 'names' expects a list of strings");
      names.insert(std::string(qmp::jsonStringView(name)));
    }
  }
  return filter;
}

void addStat(JsonValue& list, const std::string& name, JsonValue value, Json::AllocatorType& alloc) {
  JsonValue entry(rapidjson::kObjectType);
  entry.AddMember("name", qmp::jsonString(name, alloc), alloc);
  entry.AddMember("value", value, alloc);
  list.PushBack(entry, alloc);
}

// KVM's statistics: one value as a number, a histogram as a list (QEMU's StatsValue).
JsonValue kvmStatsList(const std::vector<kvm::BinaryStat>& stats, const ProviderFilter& filter,
                       Json::AllocatorType& alloc) {
  JsonValue list(rapidjson::kArrayType);
  for (const auto& stat : stats) {
    if (!filter.wants("kvm", stat.name)) continue;
    if (stat.values.size() == 1) {
      addStat(list, stat.name, stat.boolean ? JsonValue(stat.values[0] != 0) : JsonValue(stat.values[0]), alloc);
      continue;
    }
    JsonValue buckets(rapidjson::kArrayType);
    for (uint64_t v : stat.values) buckets.PushBack(JsonValue(v), alloc);
    addStat(list, stat.name, std::move(buckets), alloc);
  }
  return list;
}

JsonValue vmmStatsList(const ExitStats::Snapshot& stats, const ProviderFilter& filter, Json::AllocatorType& alloc) {
  JsonValue list(rapidjson::kArrayType);
  auto add = [&](const std::string& name, uint64_t value) {
    if (filter.wants("vmm", name)) addStat(list, name, JsonValue(value), alloc);
  };
  add("exits", stats.total());
  for (size_t i = 0; i < stats.reasons.size(); ++i) add(exitReasonStatName(static_cast<ExitReason>(i)), stats.reasons[i]);
  for (AddressSpace space : {AddressSpace::Io, AddressSpace::Mmio}) {
    for (const auto& entry : stats.top(space, kQueryStatsTopAddresses)) add(addressStatName(entry), entry.exits);
  }
  add("exits_untracked_address", stats.other_addresses);
  return list;
}

void pushResult(Json& results, const char* provider, JsonValue stats, const std::string* qom_path) {
  auto& alloc = results.GetAllocator();
  JsonValue result(rapidjson::kObjectType);
  result.AddMember("provider", JsonValue(rapidjson::StringRef(provider)), alloc);
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
                     auto filter = providerFilter(args);
                     if (auto* error = std::get_if<QmpError>(&filter)) return *error;
                     const auto& wanted = std::get<ProviderFilter>(filter);
                     Json results = qmp::jsonArray();
                     auto& alloc = results.GetAllocator();
                     const Machine& machine = vm.machine();
                     if (qmp::jsonStringView(args["target"]) == "vm") {
                       if (wanted.asked("kvm") && machine.running()) {
                         pushResult(results, "kvm", kvmStatsList(machine.kvmVmStats(), wanted, alloc), nullptr);
                       }
                       if (wanted.asked("vmm")) {
                         ExitStats::Snapshot whole;
                         for (const auto& stats : machine.exitStats()) whole.add(stats);
                         pushResult(results, "vmm", vmmStatsList(whole, wanted, alloc), nullptr);
                       }
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
                     auto selected = [&](size_t index, std::string& path) {
                       path = vcpuQomPath(index);
                       return !paths || paths->count(path);
                     };
                     std::string path;
                     if (wanted.asked("kvm")) {  // QEMU's order: provider by provider, each vCPU in turn
                       auto per_vcpu = machine.kvmVcpuStats();
                       for (size_t i = 0; i < per_vcpu.size(); ++i) {
                         if (selected(i, path)) pushResult(results, "kvm", kvmStatsList(per_vcpu[i], wanted, alloc), &path);
                       }
                     }
                     if (wanted.asked("vmm")) {
                       auto per_vcpu = machine.exitStats();
                       for (size_t i = 0; i < per_vcpu.size(); ++i) {
                         if (selected(i, path)) pushResult(results, "vmm", vmmStatsList(per_vcpu[i], wanted, alloc), &path);
                       }
                     }
                     return results;
                   });
}

}  // namespace vmmd
