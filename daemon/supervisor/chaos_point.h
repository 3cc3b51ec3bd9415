// Named points in the supervisor where a test can make vmmd die: VMMD_CHAOS_POINT=after-spawn
// makes vmmd SIGKILL itself the first time it passes `after-spawn`. Compiled in always, so the
// chaos harness (tests/chaos/) tests the very binary that ships; without the variable it does
// nothing (one getenv at the first point, cached).
//
// The points: before-spawn / after-spawn (a worker's start: its intent committed / the process
// spawned, its pid not yet committed), after-commit (the pid committed), before-kill / after-kill
// (a destroy: its intent committed / SIGKILL sent), after-shutdown-commit (a shutdown's deadline
// committed, before the power button).
#pragma once

#include <string_view>

namespace vmmd::daemon {

void chaosPoint(std::string_view name);

}  // namespace vmmd::daemon
