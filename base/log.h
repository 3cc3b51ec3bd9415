// The one logger of vmm and vmmd: every line either program writes to stderr goes through here,
// with a level. Lines keep the form the tests and vmmd read: "PROGRAM: message", warnings
// "PROGRAM: warning: message".
//
// When stderr is connected to systemd's journal (JOURNAL_STREAM names stderr's device and inode,
// as systemd sets it for a service), each line starts with its syslog priority ("<3>" error,
// "<4>" warning, "<6>" info, "<7>" debug; sd-daemon(3)) followed by the message alone (the
// journal records the program), so `journalctl -p` and the journal's PRIORITY field carry the
// level. Elsewhere (a terminal, a worker's log file) lines are plain.
#pragma once

#include <string>
#include <string_view>

namespace vmmd::log {

enum class Level { Error, Warning, Info, Debug };

// The prefix of every line ("vmm", "vmmd"); set once at start, before threads log.
void setProgram(std::string_view name);
void setLevel(Level level);
Level level();
// The value of the environment variable `variable` (VMM_LOG, VMMD_LOG), if set and known;
// otherwise the level stays as it is.
void setLevelFromEnvironment(const char* variable);
// "error", "warning", "info", "debug"; false for anything else.
bool parseLevel(std::string_view text, Level& out);
// The line as written without a journal: "PROGRAM: " (+ "warning: ") + message, one newline.
std::string formatLine(Level level, std::string_view message);
// Whether lines get journal priority prefixes: decided from JOURNAL_STREAM and stderr at the
// first line (or now, for the tests).
bool toJournal();
void redetectJournal();

// Writes the line in one write(2) when `level` is enabled (safe from any thread).
void write(Level level, std::string_view message);
inline void error(std::string_view message) { write(Level::Error, message); }
inline void warning(std::string_view message) { write(Level::Warning, message); }
inline void info(std::string_view message) { write(Level::Info, message); }
inline void debug(std::string_view message) { write(Level::Debug, message); }

}  // namespace vmmd::log
