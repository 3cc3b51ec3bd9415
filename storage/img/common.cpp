#include "storage/img/common.h"

#include <cstdio>

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
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty()) {
      size_t eq = item.find('=');
      if (eq == std::string::npos) return Error("invalid option '" + item + "' (expected name=value)");
      out[item.substr(0, eq)] = item.substr(eq + 1);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
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
