#include "vmm/log/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace vmmd::log {
namespace {

std::atomic<Level> current{Level::Info};

}  // namespace

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

void setLevelFromEnvironment() {
  const char* text = std::getenv("VMM_LOG");
  Level parsed;
  if (text && parseLevel(text, parsed)) setLevel(parsed);
}

std::string formatLine(Level level, std::string_view message) {
  std::string line = "vmm: ";
  if (level == Level::Warning) line += "warning: ";
  line += message;
  if (line.back() != '\n') line += '\n';
  return line;
}

void write(Level level, std::string_view message) {
  if (level > current.load(std::memory_order_relaxed)) return;
  std::string line = formatLine(level, message);
  // One write: lines from vCPU threads and the main loop do not interleave.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace vmmd::log
