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

constexpr EnumNames<StopIntent, 4> kIntentNames = {{
    {StopIntent::kNone, ""},
    {StopIntent::kShutdownAcpi, "shutdown-acpi"},
    {StopIntent::kShutdownAgent, "shutdown-agent"},
    {StopIntent::kDestroy, "destroy"},
}};

}  // namespace

std::string_view toString(VmState state) { return nameOf(kStateNames, state); }
std::optional<VmState> parseVmState(std::string_view text) { return valueOf(kStateNames, text); }

}  // namespace vmmd::daemon

namespace vmmd::daemon {

std::string_view toString(StopIntent intent) { return nameOf(kIntentNames, intent); }
std::optional<StopIntent> parseStopIntent(std::string_view text) { return valueOf(kIntentNames, text); }

}  // namespace vmmd::daemon
