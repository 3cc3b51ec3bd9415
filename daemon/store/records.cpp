#include "daemon/store/records.h"

#include <array>
#include <utility>

namespace vmmd::daemon {
namespace {

constexpr std::array<std::pair<VmState, std::string_view>, 6> kStateNames = {{
    {VmState::kShutoff, "shut-off"},
    {VmState::kStarting, "starting"},
    {VmState::kRunning, "running"},
    {VmState::kPaused, "paused"},
    {VmState::kShuttingDown, "shutting-down"},
    {VmState::kCrashed, "crashed"},
}};

}  // namespace

std::string_view toString(VmState state) {
  for (const auto& [value, name] : kStateNames) {
    if (value == state) return name;
  }
  return "shut-off";
}

std::optional<VmState> parseVmState(std::string_view text) {
  for (const auto& [value, name] : kStateNames) {
    if (name == text) return value;
  }
  return std::nullopt;
}

}  // namespace vmmd::daemon
