#include "daemon/process/worker_taps.h"

#include "base/parse.h"
#include "daemon/process/process_identity.h"

namespace vmmd::daemon {
namespace {

// "tap,id=net3,fd=9" -> {3, 9}.
std::optional<std::pair<size_t, int>> nicTapFd(std::string_view value) {
  constexpr std::string_view kTap = "tap,";
  if (value.substr(0, kTap.size()) != kTap) return std::nullopt;
  std::optional<uint64_t> index, fd;
  auto number = [](std::string_view text) -> std::optional<uint64_t> {
    auto parsed = parseUnsigned(text);
    return parsed ? std::optional(*parsed) : std::nullopt;
  };
  value.remove_prefix(kTap.size());
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    if (item.substr(0, 6) == "id=net") index = number(item.substr(6));
    else if (item.substr(0, 3) == "fd=") fd = number(item.substr(3));
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  if (!index || !fd || *index >= 1024 || *fd > 65535) return std::nullopt;
  return std::pair{static_cast<size_t>(*index), static_cast<int>(*fd)};
}

}  // namespace

std::map<size_t, int> tapFdsInArgv(const std::vector<std::string>& argv) {
  std::map<size_t, int> out;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] != "-netdev") continue;
    if (auto found = nicTapFd(argv[i + 1])) out.insert(*found);
  }
  return out;
}

std::optional<std::string> tapNameInFdinfo(std::string_view fdinfo) {
  constexpr std::string_view kKey = "iff:";
  size_t at = 0;
  while (at < fdinfo.size()) {
    size_t end = fdinfo.find('\n', at);
    std::string_view line = fdinfo.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (line.substr(0, kKey.size()) == kKey) {
      line.remove_prefix(kKey.size());
      size_t first = line.find_first_not_of(" \t");
      if (first == std::string_view::npos) return std::nullopt;
      std::string name(line.substr(first));
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
      return name.empty() ? std::nullopt : std::optional(name);
    }
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  return std::nullopt;
}

std::map<size_t, std::string> workerTaps(pid_t pid, const std::vector<std::string>& argv) {
  std::map<size_t, std::string> out;
  for (auto [index, fd] : tapFdsInArgv(argv)) {
    auto text = readProcFile("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
    if (!text) continue;
    if (auto name = tapNameInFdinfo(*text)) out.emplace(index, std::move(*name));
  }
  return out;
}

}  // namespace vmmd::daemon
