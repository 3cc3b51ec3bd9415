// serializeDefinition: VmDefinition → canonical JSON (the form stored in the database).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "daemon/definition/definition_json.h"

namespace vmmd::daemon {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void writeString(JsonWriter& w, std::string_view text) {
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

void writeMember(JsonWriter& w, std::string_view key, std::string_view value) {
  writeString(w, key);
  writeString(w, value);
}

void writeDisks(JsonWriter& w, const std::vector<DiskSpec>& disks) {
  w.Key("disks");
  w.StartArray();
  for (const DiskSpec& disk : disks) {
    w.StartObject();
    writeMember(w, "id", disk.id);
    writeMember(w, "path", disk.path);
    writeMember(w, "format", toString(disk.format));
    w.Key("readonly");
    w.Bool(disk.readonly);
    writeMember(w, "cache", toString(disk.cache));
    w.EndObject();
  }
  w.EndArray();
}

void writeNics(JsonWriter& w, const std::vector<NicSpec>& nics) {
  w.Key("nics");
  w.StartArray();
  for (const NicSpec& nic : nics) {
    w.StartObject();
    if (nic.onNetwork()) writeMember(w, "network", nic.network);
    else writeMember(w, "ifname", nic.ifname);
    writeMember(w, "mac", nic.mac);
    w.EndObject();
  }
  w.EndArray();
}

void writeBoot(JsonWriter& w, const BootSpec& boot) {
  w.Key("boot");
  w.StartObject();
  writeMember(w, "firmware", toString(boot.firmware));
  if (boot.loader) writeMember(w, "loader", *boot.loader);
  w.Key("order");
  w.StartArray();
  for (const std::string& id : boot.order) writeString(w, id);
  w.EndArray();
  w.EndObject();
}

void writeBackoff(JsonWriter& w, const RestartBackoff& backoff) {
  w.Key("restart_backoff");
  w.StartObject();
  w.Key("initial_ms");
  w.Uint(backoff.initial_ms);
  w.Key("max_ms");
  w.Uint(backoff.max_ms);
  w.Key("max_attempts");
  w.Uint(backoff.max_attempts);
  w.Key("reset_after_s");
  w.Uint(backoff.reset_after_s);
  w.EndObject();
}

}  // namespace

std::string serializeDefinition(const VmDefinition& def) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("schema");
  w.Int(kDefinitionSchema);
  writeMember(w, "name", def.name);
  writeMember(w, "uuid", def.uuid);
  w.Key("memory");
  w.Uint64(def.memory_mib);
  w.Key("vcpus");
  w.Uint(def.vcpus);
  writeMember(w, "machine", toString(def.machine));
  if (def.kernel) writeMember(w, "kernel", *def.kernel);
  if (def.boot) writeBoot(w, *def.boot);
  if (def.initrd) writeMember(w, "initrd", *def.initrd);
  if (def.cmdline) writeMember(w, "cmdline", *def.cmdline);
  writeDisks(w, def.disks);
  writeNics(w, def.nics);
  w.Key("serial");
  w.Bool(def.serial);
  w.Key("agent");
  w.Bool(def.agent);
  w.Key("autostart");
  w.Bool(def.autostart);
  writeMember(w, "on_crash", toString(def.on_crash));
  writeMember(w, "on_poweroff", toString(def.on_poweroff));
  writeBackoff(w, def.restart_backoff);
  if (def.limits) {
    w.Key("limits");
    w.StartObject();
    if (def.limits->cpu_percent) {
      w.Key("cpu_percent");
      w.Uint(*def.limits->cpu_percent);
    }
    if (def.limits->memory_overhead_mib) {
      w.Key("memory_overhead_mib");
      w.Uint64(*def.limits->memory_overhead_mib);
    }
    w.EndObject();
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace vmmd::daemon
