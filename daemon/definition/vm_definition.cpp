#include "daemon/definition/vm_definition.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace vmmd::daemon {

std::string_view toString(DiskFormat format) { return format == DiskFormat::kQcow2 ? "qcow2" : "raw"; }
std::string_view toString(DiskCache cache) { return cache == DiskCache::kNone ? "none" : "writeback"; }

std::string_view toString(CrashPolicy policy) {
  switch (policy) {
    case CrashPolicy::kRestart: return "restart";
    case CrashPolicy::kDestroy: return "destroy";
    case CrashPolicy::kPreserve: return "preserve";
  }
  return "destroy";
}

std::string_view toString(PoweroffPolicy policy) { return policy == PoweroffPolicy::kRestart ? "restart" : "destroy"; }

std::optional<DiskFormat> parseDiskFormat(std::string_view text) {
  if (text == "raw") return DiskFormat::kRaw;
  if (text == "qcow2") return DiskFormat::kQcow2;
  return std::nullopt;
}

std::optional<DiskCache> parseDiskCache(std::string_view text) {
  if (text == "none") return DiskCache::kNone;
  if (text == "writeback") return DiskCache::kWriteback;
  return std::nullopt;
}

std::optional<CrashPolicy> parseCrashPolicy(std::string_view text) {
  if (text == "restart") return CrashPolicy::kRestart;
  if (text == "destroy") return CrashPolicy::kDestroy;
  if (text == "preserve") return CrashPolicy::kPreserve;
  return std::nullopt;
}

std::optional<PoweroffPolicy> parsePoweroffPolicy(std::string_view text) {
  if (text == "destroy") return PoweroffPolicy::kDestroy;
  if (text == "restart") return PoweroffPolicy::kRestart;
  return std::nullopt;
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
  if (auto st = checkFile("kernel", def.kernel, R_OK, false); !st) return st;
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
