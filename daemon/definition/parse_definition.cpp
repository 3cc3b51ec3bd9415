// parseDefinition: JSON text → validated VmDefinition. One helper per nested object; every error
// names the field it is about.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <limits>

#include "daemon/definition/definition_json.h"
#include "daemon/definition/identifiers.h"
#include "daemon/definition/json_object_reader.h"

namespace vmmd::daemon {
namespace {

// Iterative parsing: a deeply nested hostile document cannot exhaust the stack.
// Encoding validation: invalid UTF-8 is refused rather than stored and echoed back.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

std::string indexed(std::string_view array, size_t i) { return std::string(array) + "[" + std::to_string(i) + "]"; }

// An optional member naming an enum value: `target` is left at its default when it is absent;
// a name `parse` does not know gets "KEY: " + `accepted`.
template <typename E>
Status readOptionalEnum(const JsonObjectReader& in, std::string_view key, std::optional<E> (*parse)(std::string_view),
                        std::string_view accepted, E& target) {
  auto text = in.optionalString(key);
  if (!text) return text.error();
  if (!*text) return {};
  auto value = parse(**text);
  if (!value) return in.fieldError(key, accepted);
  target = *value;
  return {};
}

Result<DiskSpec> parseDisk(const rapidjson::Value& value, const std::string& where, size_t index) {
  if (!value.IsObject()) return Error(where + ": must be an object");
  JsonObjectReader in(value, where + ".");
  if (auto st = in.checkKeys({"id", "path", "format", "readonly", "cache"}); !st) return st.error();
  DiskSpec disk;
  auto id = in.optionalString("id");
  if (!id) return id.error();
  disk.id = id->value_or("disk" + std::to_string(index));
  if (auto st = validateDeviceId(disk.id); !st) return in.fieldError("id", st.error().message());
  auto path = in.requiredPath("path");
  if (!path) return path.error();
  disk.path = std::move(*path);
  auto format = in.requiredString("format");
  if (!format) return format.error();
  auto parsed_format = parseDiskFormat(*format);
  if (!parsed_format) return in.fieldError("format", "must be raw or qcow2");
  disk.format = *parsed_format;
  auto readonly = in.optionalBool("readonly");
  if (!readonly) return readonly.error();
  disk.readonly = readonly->value_or(false);
  auto cache = in.optionalString("cache");
  if (!cache) return cache.error();
  if (*cache) {
    auto parsed_cache = parseDiskCache(**cache);
    if (!parsed_cache) return in.fieldError("cache", parsed_cache.error().message());
    disk.cache = *parsed_cache;
  }
  return disk;
}

// {"ifname": TAP} (an existing tap) or {"network": NAME} (a vmmd network), each with an optional MAC.
Result<NicSpec> parseNic(const rapidjson::Value& value, const std::string& where) {
  if (!value.IsObject()) return Error(where + ": must be an object");
  JsonObjectReader in(value, where + ".");
  if (auto st = in.checkKeys({"ifname", "network", "mac"}); !st) return st.error();
  NicSpec nic;
  auto ifname = in.optionalString("ifname");
  if (!ifname) return ifname.error();
  auto network = in.optionalString("network");
  if (!network) return network.error();
  if (*ifname && *network) {
    return in.fieldError("network", "cannot be combined with ifname (a NIC is on an existing tap or on a vmmd network)");
  }
  if (!*ifname && !*network) {
    return in.fieldError("ifname", "required, or \"network\": the name of a network vmmd manages");
  }
  if (*ifname) {
    if (auto st = validateIfname(**ifname); !st) return in.fieldError("ifname", st.error().message());
    nic.ifname = std::move(**ifname);
  } else {
    // A network's name follows the VM name's rules (it names files and dnsmasq's config).
    if (auto st = validateVmName(**network); !st) return in.fieldError("network", st.error().message());
    nic.network = std::move(**network);
  }
  auto mac = in.optionalString("mac");
  if (!mac) return mac.error();
  auto canonical = *mac ? canonicalMac(**mac) : generateMac();
  if (!canonical) return in.fieldError("mac", canonical.error().message());
  nic.mac = std::move(*canonical);
  return nic;
}

Result<RestartBackoff> parseBackoff(const rapidjson::Value* value) {
  RestartBackoff backoff;
  if (!value) return backoff;
  if (!value->IsObject()) return Error("restart_backoff: must be an object");
  JsonObjectReader in(*value, "restart_backoff.");
  if (auto st = in.checkKeys({"initial_ms", "max_ms", "max_attempts", "reset_after_s"}); !st) return st.error();
  constexpr int64_t kHourMs = 3600 * 1000;
  auto initial = in.optionalInteger("initial_ms", 1, kHourMs, "must be between 1 and 3600000");
  if (!initial) return initial.error();
  backoff.initial_ms = static_cast<uint32_t>(initial->value_or(backoff.initial_ms));
  auto max = in.optionalInteger("max_ms", 1, kHourMs, "must be between 1 and 3600000");
  if (!max) return max.error();
  backoff.max_ms = static_cast<uint32_t>(max->value_or(backoff.max_ms));
  if (backoff.max_ms < backoff.initial_ms) return in.fieldError("max_ms", "must not be less than initial_ms");
  auto attempts = in.optionalInteger("max_attempts", 0, 10000, "must be between 0 (unlimited) and 10000");
  if (!attempts) return attempts.error();
  backoff.max_attempts = static_cast<uint32_t>(attempts->value_or(backoff.max_attempts));
  auto reset = in.optionalInteger("reset_after_s", 1, 86400, "must be between 1 and 86400");
  if (!reset) return reset.error();
  backoff.reset_after_s = static_cast<uint32_t>(reset->value_or(backoff.reset_after_s));
  return backoff;
}

// Disks and NICs: arrays of objects, with ids, paths, tap names and MACs unique among them.
Status parseDevices(const JsonObjectReader& in, VmDefinition& def) {
  if (const rapidjson::Value* disks = in.find("disks")) {
    if (!disks->IsArray()) return in.fieldError("disks", "must be an array");
    if (disks->Size() > kMaxDisks) return in.fieldError("disks", "at most " + std::to_string(kMaxDisks) + " disks");
    for (rapidjson::SizeType i = 0; i < disks->Size(); ++i) {
      std::string where = indexed("disks", i);
      auto disk = parseDisk((*disks)[i], where, i);
      if (!disk) return disk.error();
      for (size_t j = 0; j < def.disks.size(); ++j) {
        if (def.disks[j].id == disk->id) return Error(where + ".id: same as " + indexed("disks", j) + ".id");
        if (def.disks[j].path == disk->path) return Error(where + ".path: same file as " + indexed("disks", j));
      }
      def.disks.push_back(std::move(*disk));
    }
  }
  if (const rapidjson::Value* nics = in.find("nics")) {
    if (!nics->IsArray()) return in.fieldError("nics", "must be an array");
    if (nics->Size() > kMaxNics) return in.fieldError("nics", "at most " + std::to_string(kMaxNics) + " nics");
    for (rapidjson::SizeType i = 0; i < nics->Size(); ++i) {
      std::string where = indexed("nics", i);
      auto nic = parseNic((*nics)[i], where);
      if (!nic) return nic.error();
      for (size_t j = 0; j < def.nics.size(); ++j) {
        if (!nic->ifname.empty() && def.nics[j].ifname == nic->ifname) return Error(where + ".ifname: same as " + indexed("nics", j));
        if (def.nics[j].mac == nic->mac) return Error(where + ".mac: same as " + indexed("nics", j));
      }
      def.nics.push_back(std::move(*nic));
    }
  }
  return {};
}

Status parsePolicies(const JsonObjectReader& in, VmDefinition& def) {
  for (auto [key, target] : {std::pair{"serial", &def.serial}, {"agent", &def.agent}, {"autostart", &def.autostart}}) {
    auto value = in.optionalBool(key);
    if (!value) return value.error();
    if (*value) *target = **value;
  }
  if (auto st = readOptionalEnum(in, "on_crash", parseCrashPolicy, "must be restart, destroy or preserve", def.on_crash); !st) {
    return st;
  }
  if (auto st = readOptionalEnum(in, "on_poweroff", parsePoweroffPolicy, "must be destroy or restart", def.on_poweroff); !st) {
    return st;
  }
  auto backoff = parseBackoff(in.find("restart_backoff"));
  if (!backoff) return backoff.error();
  def.restart_backoff = *backoff;
  return {};
}

Result<std::optional<ResourceLimits>> parseLimits(const rapidjson::Value* value) {
  if (!value) return std::optional<ResourceLimits>();
  if (!value->IsObject()) return Error("limits: must be an object");
  JsonObjectReader in(*value, "limits.");
  if (auto st = in.checkKeys({"cpu_percent", "memory_overhead_mib"}); !st) return st.error();
  ResourceLimits limits;
  auto cpu = in.optionalInteger("cpu_percent", 1, kMaxCpuPercent,
                                "must be between 1 and " + std::to_string(kMaxCpuPercent) + " (100 is one host CPU)");
  if (!cpu) return cpu.error();
  if (*cpu) limits.cpu_percent = static_cast<uint32_t>(**cpu);
  auto overhead = in.optionalInteger("memory_overhead_mib", 0, static_cast<int64_t>(kMaxMemoryMib),
                                     "must be between 0 and " + std::to_string(kMaxMemoryMib));
  if (!overhead) return overhead.error();
  if (*overhead) limits.memory_overhead_mib = static_cast<uint64_t>(**overhead);
  return std::optional(limits);
}

// The schema number comes first: a newer document is refused as a whole, not field by field.
Status checkSchema(const JsonObjectReader& in) {
  const rapidjson::Value* schema = in.find("schema");
  if (!schema) return Error("schema: required (this vmmd writes \"schema\": " + std::to_string(kDefinitionSchema) + ")");
  if (!schema->IsInt64()) return Error("schema: must be an integer");
  int64_t version = schema->GetInt64();
  if (version > kDefinitionSchema) {
    return Error("schema: version " + std::to_string(version) + " is newer than this vmmd understands (" +
                 std::to_string(kDefinitionSchema) + ")");
  }
  if (version < 1) return Error("schema: must be " + std::to_string(kDefinitionSchema));
  return {};
}

Status parseBasics(const JsonObjectReader& in, VmDefinition& def) {
  auto name = in.requiredString("name");
  if (!name) return name.error();
  if (auto st = validateVmName(*name); !st) return in.fieldError("name", st.error().message());
  def.name = std::move(*name);
  auto uuid = in.optionalString("uuid");
  if (!uuid) return uuid.error();
  auto canonical = *uuid ? canonicalUuid(**uuid) : generateUuid();
  if (!canonical) return in.fieldError("uuid", canonical.error().message());
  def.uuid = std::move(*canonical);
  // No lower bound here: a small or negative value gets the "≥ 16 MiB" message below.
  auto memory = in.requiredInteger("memory", std::numeric_limits<int64_t>::min(), kMaxMemoryMib, "must be at most " + std::to_string(kMaxMemoryMib) + " MiB");
  if (!memory) return memory.error();
  if (*memory < static_cast<int64_t>(kMinMemoryMib)) {
    return in.fieldError("memory", "must be ≥ " + std::to_string(kMinMemoryMib) + " MiB");
  }
  def.memory_mib = static_cast<uint64_t>(*memory);
  auto vcpus = in.optionalInteger("vcpus", 1, kMaxVcpus, "must be between 1 and " + std::to_string(kMaxVcpus));
  if (!vcpus) return vcpus.error();
  def.vcpus = static_cast<uint32_t>(vcpus->value_or(1));
  if (auto st = readOptionalEnum(in, "machine", parseMachineType, "must be pc or microvm", def.machine); !st) return st;
  auto kernel = in.optionalPath("kernel");
  if (!kernel) return kernel.error();
  def.kernel = std::move(*kernel);
  auto initrd = in.optionalPath("initrd");
  if (!initrd) return initrd.error();
  def.initrd = std::move(*initrd);
  auto cmdline = in.optionalString("cmdline");
  if (!cmdline) return cmdline.error();
  if (*cmdline && (*cmdline)->size() > kMaxCmdlineBytes) {
    return in.fieldError("cmdline", "must be at most " + std::to_string(kMaxCmdlineBytes) + " bytes");
  }
  def.cmdline = std::move(*cmdline);
  return {};
}

// "boot": {"firmware": "bios", "loader": "/abs/bios.bin", "order": ["disk0"]}. Needs the disks
// parsed (order names their ids); without "order" every disk is tried in the definition's order.
Result<BootSpec> parseBoot(const rapidjson::Value& value, const std::vector<DiskSpec>& disks) {
  if (!value.IsObject()) return Error("boot: must be an object");
  JsonObjectReader in(value, "boot.");
  if (auto st = in.checkKeys({"firmware", "loader", "order"}); !st) return st.error();
  BootSpec boot;
  if (auto st = readOptionalEnum(in, "firmware", parseFirmware, "must be bios (the only firmware vmm has)", boot.firmware); !st) {
    return st.error();
  }
  auto loader = in.optionalPath("loader");
  if (!loader) return loader.error();
  boot.loader = std::move(*loader);
  const rapidjson::Value* order = in.find("order");
  if (!order) {
    for (const DiskSpec& disk : disks) boot.order.push_back(disk.id);
    if (boot.order.empty()) return Error("boot: no disk to boot from (disks is empty)");
    return boot;
  }
  if (!order->IsArray()) return in.fieldError("order", "must be an array of disk ids");
  if (order->Empty()) return in.fieldError("order", "must name at least one disk");
  for (rapidjson::SizeType i = 0; i < order->Size(); ++i) {
    std::string where = indexed("boot.order", i);
    const rapidjson::Value& entry = (*order)[i];
    if (!entry.IsString()) return Error(where + ": must be a disk id (a string)");
    std::string id(entry.GetString(), entry.GetStringLength());
    bool known = std::any_of(disks.begin(), disks.end(), [&](const DiskSpec& disk) { return disk.id == id; });
    if (!known) return Error(where + ": no disk with id '" + id + "'");
    if (std::find(boot.order.begin(), boot.order.end(), id) != boot.order.end()) {
      return Error(where + ": '" + id + "' is named twice");
    }
    boot.order.push_back(std::move(id));
  }
  return boot;
}

// A VM boots a kernel directly or through firmware from its disks, never both.
Status parseBootMethod(const JsonObjectReader& in, VmDefinition& def) {
  const rapidjson::Value* boot = in.find("boot");
  if (!boot) {
    if (!def.kernel) return Error("kernel: required, unless \"boot\" says to boot from a disk through firmware");
    return {};
  }
  if (def.kernel) return in.fieldError("boot", "cannot be combined with kernel (a kernel is booted directly)");
  for (std::string_view field : {"initrd", "cmdline"}) {
    if (in.find(field)) return in.fieldError(field, "needs kernel (the boot loader on the disk chooses its own)");
  }
  auto spec = parseBoot(*boot, def.disks);
  if (!spec) return spec.error();
  def.boot = std::move(*spec);
  return {};
}

// What vmm's microvm cannot build, refused here rather than by a worker that fails to start:
// firmware boot (vmm has no firmware for microvm) and more virtio devices than it has transports.
Status checkMachineFits(const VmDefinition& def) {
  if (def.machine != MachineType::kMicrovm) return {};
  if (def.boot) {
    return Error("boot: not on machine microvm (it has no firmware: give a kernel, or use \"machine\": \"pc\")");
  }
  size_t transports = def.disks.size() + def.nics.size() + (def.agent ? 1 : 0);
  if (transports > kMicrovmTransports) {
    return Error("machine: microvm has " + std::to_string(kMicrovmTransports) + " virtio-mmio slots, this VM needs " +
                 std::to_string(transports) + " (one per disk, per NIC and for the agent); use \"machine\": \"pc\"");
  }
  return {};
}

}  // namespace

Result<VmDefinition> parseDefinition(std::string_view json) {
  if (json.size() > kMaxDefinitionBytes) return Error("definition: larger than 1 MiB");
  rapidjson::Document doc;
  doc.Parse<kParseFlags>(json.data(), json.size());
  if (doc.HasParseError()) {
    return Error("definition: invalid JSON at offset " + std::to_string(doc.GetErrorOffset()) + ": " +
                 rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) return Error("definition: must be a JSON object");
  JsonObjectReader in(doc, "");
  if (auto st = checkSchema(in); !st) return st.error();
  if (auto st = in.checkKeys({"schema", "name", "uuid", "memory", "vcpus", "machine", "kernel", "initrd", "cmdline", "boot",
                              "disks", "nics", "serial", "agent", "autostart", "on_crash", "on_poweroff", "restart_backoff", "limits"});
      !st) {
    return st.error();
  }
  VmDefinition def;
  if (auto st = parseBasics(in, def); !st) return st.error();
  if (auto st = parseDevices(in, def); !st) return st.error();
  if (auto st = parseBootMethod(in, def); !st) return st.error();
  if (auto st = parsePolicies(in, def); !st) return st.error();
  auto limits = parseLimits(in.find("limits"));
  if (!limits) return limits.error();
  def.limits = *limits;
  if (auto st = checkMachineFits(def); !st) return st.error();
  return def;
}

}  // namespace vmmd::daemon
