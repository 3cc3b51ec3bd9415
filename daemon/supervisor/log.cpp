#include "daemon/supervisor/log.h"

#include <unistd.h>

#include <string>

namespace vmmd::daemon {

void logLine(std::string_view line) {
  std::string out = "vmmd: ";
  out.append(line);
  out += '\n';
  (void)!::write(STDERR_FILENO, out.data(), out.size());
}

}  // namespace vmmd::daemon
