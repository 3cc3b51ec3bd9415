#include "storage/img/common.h"

#include <cstdio>

#include "base/key_values.h"
#include "base/parse.h"

namespace vmmd::img {

int fail(const std::string& message) {
  std::fprintf(stderr, "vmm-img: %s\n", message.c_str());
  return 1;
}

int usageError(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "vmm-img %s: %s\nTry 'vmm-img --help' for more information.\n", command.c_str(), message.c_str());
  return 1;
}

Result<std::map<std::string, std::string>> parseOptions(const std::string& text) {
  auto kv = KeyValues::parse("-o", text);
  if (!kv) return kv.error();
  if (auto flags = kv->takeFlags(); !flags.empty()) return Error("invalid option '" + flags[0] + "' (expected name=value)");
  std::map<std::string, std::string> out;
  for (auto& [key, value] : kv->takeRemaining()) out[key] = value;  // the last one wins, as before
  return out;
}

Result<storage::CacheMode> parseCacheOption(const std::string& name) {
  auto mode = parseDiskCache(name);
  if (!mode) return mode.error();
  return diskCacheFlags(*mode).direct ? storage::CacheMode::None : storage::CacheMode::Writeback;
}

Result<uint64_t> parseNumberOption(const char* option, const std::string& text) {
  auto value = parseUnsigned(text);
  if (!value) return value.error().withContext(option);
  return *value;
}

std::string humanSize(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[64];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else if (v == static_cast<double>(static_cast<uint64_t>(v))) std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
  else std::snprintf(buf, sizeof buf, "%.3g %s", v, units[u]);
  return buf;
}

}  // namespace vmmd::img
