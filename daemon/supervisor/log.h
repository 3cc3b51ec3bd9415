// vmmd's log: one line per event on stderr ("vmmd: vm 'web1': started (pid 1234)"), which the
// journal (or the terminal in --foreground) keeps. Lines are written whole so they never interleave.
#pragma once

#include <string_view>

namespace vmmd::daemon {

void logLine(std::string_view line);

}  // namespace vmmd::daemon
