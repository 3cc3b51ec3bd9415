#include "daemon/process/process_identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>

#include "base/unique_fd.h"

namespace vmmd::daemon {

Result<uint64_t> parseStartTime(std::string_view text) {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return Error("/proc stat: no ')' after the command name");
  // After ") " come fields 3 (state), 4, ...; starttime is field 22, the 20th of them.
  std::string_view rest = text.substr(close + 1);
  constexpr int kStartTimeIndex = 22 - 3;
  int index = -1;
  size_t pos = 0;
  while (pos < rest.size()) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    if (end == pos) break;
    ++index;
    if (index == kStartTimeIndex) {
      std::string_view field = rest.substr(pos, end - pos);
      while (!field.empty() && field.back() == '\n') field.remove_suffix(1);
      uint64_t value = 0;
      auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
      if (ec != std::errc() || ptr != field.data() + field.size()) return Error("/proc stat: bad starttime field");
      return value;
    }
    pos = end;
  }
  return Error("/proc stat: fewer than 22 fields");
}

namespace {

// The whole text of /proc/PID/stat; ENOENT in the error code when the process is gone.
Result<std::string> readProcessStat(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::fromErrno("open " + path);
  // The file is one line well under 1 KiB, but a command name can be 15 bytes of anything; read it all.
  std::string text;
  char buffer[1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    // ESRCH: the process exited between open and read.
    if (n < 0) return Error::fromErrno("read " + path, errno == ESRCH ? ENOENT : errno);
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace

Result<uint64_t> processStartTime(pid_t pid) {
  auto text = readProcessStat(pid);
  if (!text) return text.error();
  auto start = parseStartTime(*text);
  if (!start) return start.error().withContext("/proc/" + std::to_string(pid) + "/stat");
  return start;
}

bool isSameProcess(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  auto actual = processStartTime(pid);
  return actual && *actual == start_time;
}

bool isZombie(pid_t pid) {
  auto text = readProcessStat(pid);
  if (!text) return false;
  // Field 3 (state) follows the ") " that closes the command name.
  size_t paren = text->rfind(')');
  if (paren == std::string::npos || paren + 2 >= text->size()) return false;
  return (*text)[paren + 2] == 'Z';
}

}  // namespace vmmd::daemon
