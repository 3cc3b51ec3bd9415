#include "daemon/store/records.h"

#include "daemon/definition/enum_names.h"

namespace vmmd::daemon {
namespace {

constexpr EnumNames<VmState, 6> kStateNames = {{
    {VmState::kShutoff, "shut-off"},
    {VmState::kStarting, "starting"},
    {VmState::kRunning, "running"},
    {VmState::kPaused, "paused"},
    {VmState::kShuttingDown, "shutting-down"},
    {VmState::kCrashed, "crashed"},
}};

}  // namespace

std::string_view toString(VmState state) { return nameOf(kStateNames, state); }
std::optional<VmState> parseVmState(std::string_view text) { return valueOf(kStateNames, text); }

}  // namespace vmmd::daemon
