#include "base/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace vmmd::log {
namespace {

std::atomic<Level> current{Level::Info};
std::string program = "vmm";
// -1 not decided yet, 0 plain lines, 1 journal priority prefixes.
std::atomic<int> journal{-1};

// JOURNAL_STREAM is "DEVICE:INODE" of the journal's stream socket; it is inherited by children
// whose stderr may point elsewhere, hence the comparison with stderr itself.
bool stderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (!stream) return false;
  unsigned long long device = 0, inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  struct stat st{};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == device && st.st_ino == inode;
}

const char* priorityPrefix(Level level) {
  switch (level) {
    case Level::Error: return "<3>";
    case Level::Warning: return "<4>";
    case Level::Info: return "<6>";
    case Level::Debug: return "<7>";
  }
  return "<6>";
}

}  // namespace

void setProgram(std::string_view name) { program = name; }

void setLevel(Level level) { current.store(level, std::memory_order_relaxed); }

Level level() { return current.load(std::memory_order_relaxed); }

bool parseLevel(std::string_view text, Level& out) {
  for (auto [name, value] : {std::pair{"error", Level::Error}, std::pair{"warning", Level::Warning},
                             std::pair{"info", Level::Info}, std::pair{"debug", Level::Debug}}) {
    if (text == name) {
      out = value;
      return true;
    }
  }
  return false;
}

void setLevelFromEnvironment(const char* variable) {
  const char* text = std::getenv(variable);
  Level parsed;
  if (text && parseLevel(text, parsed)) setLevel(parsed);
}

std::string formatLine(Level level, std::string_view message) {
  std::string line = program + ": ";
  if (level == Level::Warning) line += "warning: ";
  line += message;
  if (line.back() != '\n') line += '\n';
  return line;
}

void redetectJournal() { journal.store(stderrIsJournal() ? 1 : 0, std::memory_order_relaxed); }

bool toJournal() {
  if (journal.load(std::memory_order_relaxed) < 0) redetectJournal();
  return journal.load(std::memory_order_relaxed) == 1;
}

void write(Level level, std::string_view message) {
  if (level > current.load(std::memory_order_relaxed)) return;
  // The journal records the program and the priority itself: only the message follows "<N>".
  std::string line = toJournal() ? priorityPrefix(level) + std::string(message) : formatLine(level, message);
  if (line.back() != '\n') line += '\n';
  // One write: lines from vCPU threads and the main loop do not interleave.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace vmmd::log
