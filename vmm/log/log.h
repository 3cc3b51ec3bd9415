// The worker's one logger: every message vmm writes to stderr goes through here, with a level.
// Lines keep the form they always had ("vmm: ...", warnings "vmm: warning: ..."): vmmd and the
// tests read them. VMM_LOG=error|warning|info|debug sets how much is written (info by default).
#pragma once

#include <string>
#include <string_view>

namespace vmmd::log {

enum class Level { Error, Warning, Info, Debug };

void setLevel(Level level);
Level level();
// VMM_LOG's value, if set and known; otherwise the level stays as it is.
void setLevelFromEnvironment();
// "error", "warning", "info", "debug"; false for anything else.
bool parseLevel(std::string_view text, Level& out);
// The line as written: "vmm: " (+ "warning: ") + message, one trailing newline.
std::string formatLine(Level level, std::string_view message);

// Writes the line in one write(2) when `level` is enabled (safe from any thread).
void write(Level level, std::string_view message);
inline void error(std::string_view message) { write(Level::Error, message); }
inline void warning(std::string_view message) { write(Level::Warning, message); }
inline void info(std::string_view message) { write(Level::Info, message); }
inline void debug(std::string_view message) { write(Level::Debug, message); }

}  // namespace vmmd::log
