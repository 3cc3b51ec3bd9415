#include "daemon/definition/vm_definition.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "daemon/definition/enum_names.h"

namespace vmmd::daemon {

namespace {

constexpr EnumNames<DiskFormat, 2> kDiskFormats = {{{DiskFormat::kRaw, "raw"}, {DiskFormat::kQcow2, "qcow2"}}};
constexpr EnumNames<MachineType, 2> kMachineTypes = {{{MachineType::kPc, "pc"}, {MachineType::kMicrovm, "microvm"}}};
constexpr EnumNames<Firmware, 1> kFirmwares = {{{Firmware::kBios, "bios"}}};
constexpr EnumNames<CrashPolicy, 3> kCrashPolicies = {
    {{CrashPolicy::kRestart, "restart"}, {CrashPolicy::kDestroy, "destroy"}, {CrashPolicy::kPreserve, "preserve"}}};
constexpr EnumNames<PoweroffPolicy, 2> kPoweroffPolicies = {
    {{PoweroffPolicy::kDestroy, "destroy"}, {PoweroffPolicy::kRestart, "restart"}}};

}  // namespace

std::string_view toString(DiskFormat format) { return nameOf(kDiskFormats, format); }
std::string_view toString(MachineType machine) { return nameOf(kMachineTypes, machine); }
std::string_view toString(Firmware firmware) { return nameOf(kFirmwares, firmware); }
std::string_view toString(DiskCache cache) { return diskCacheName(cache); }
std::string_view toString(CrashPolicy policy) { return nameOf(kCrashPolicies, policy); }
std::string_view toString(PoweroffPolicy policy) { return nameOf(kPoweroffPolicies, policy); }
std::optional<DiskFormat> parseDiskFormat(std::string_view text) { return valueOf(kDiskFormats, text); }
std::optional<MachineType> parseMachineType(std::string_view text) { return valueOf(kMachineTypes, text); }
std::optional<Firmware> parseFirmware(std::string_view text) { return valueOf(kFirmwares, text); }
std::optional<CrashPolicy> parseCrashPolicy(std::string_view text) { return valueOf(kCrashPolicies, text); }
std::optional<PoweroffPolicy> parsePoweroffPolicy(std::string_view text) { return valueOf(kPoweroffPolicies, text); }

std::string describeBoot(const VmDefinition& def) {
  if (def.kernel) return "kernel " + *def.kernel + " (direct)";
  if (!def.boot) return "none";
  std::string text = "firmware " + std::string(toString(def.boot->firmware));
  if (def.boot->loader) text += " (" + *def.boot->loader + ")";
  text += " from ";
  for (size_t i = 0; i < def.boot->order.size(); ++i) text += (i ? ", " : "") + def.boot->order[i];
  return text;
}

uint32_t restartDelayMs(const RestartBackoff& backoff, uint32_t attempt) {
  uint64_t delay = backoff.initial_ms;
  for (uint32_t i = 1; i < attempt && delay < backoff.max_ms; ++i) delay *= 2;
  return static_cast<uint32_t>(std::min<uint64_t>(delay, backoff.max_ms));
}

namespace {

Status checkFile(std::string_view field, const std::string& path, int mode, bool block_ok) {
  std::string what = std::string(field) + ": " + path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error::fromErrno(what);
  if (!S_ISREG(st.st_mode) && !(block_ok && S_ISBLK(st.st_mode))) {
    return Error(what + ": not a regular file" + (block_ok ? " or block device" : ""));
  }
  if (::access(path.c_str(), mode) != 0) return Error::fromErrno(what);
  return {};
}

}  // namespace

Status checkDefinitionFiles(const VmDefinition& def) {
  if (def.kernel) {
    if (auto st = checkFile("kernel", *def.kernel, R_OK, false); !st) return st;
  }
  if (def.boot && def.boot->loader) {
    if (auto st = checkFile("boot.loader", *def.boot->loader, R_OK, false); !st) return st;
  }
  if (def.initrd) {
    if (auto st = checkFile("initrd", *def.initrd, R_OK, false); !st) return st;
  }
  for (size_t i = 0; i < def.disks.size(); ++i) {
    const DiskSpec& disk = def.disks[i];
    int mode = disk.readonly ? R_OK : R_OK | W_OK;
    if (auto st = checkFile("disks[" + std::to_string(i) + "].path", disk.path, mode, true); !st) return st;
  }
  return {};
}

}  // namespace vmmd::daemon
