#include "daemon/process/process_identity.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
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
Result<std::string> readProcessStat(pid_t pid) { return readProcFile("/proc/" + std::to_string(pid) + "/stat"); }

}  // namespace

Result<std::string> readProcFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::fromErrno("open " + path);
  // /proc files have no size; read until the end.
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


Result<std::string> bootId() {
  auto text = readProcFile("/proc/sys/kernel/random/boot_id");
  if (!text) return text.error();
  while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
  return text;
}

namespace {

// The first number on a "Uid:"/"Gid:" line of /proc/PID/status (the real id).
Result<uint32_t> statusId(pid_t pid, std::string_view key) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  auto text = readProcFile(path);
  if (!text) return text.error();
  size_t line = text->find("\n" + std::string(key));
  if (line == std::string::npos) return Error(path + ": no " + std::string(key) + " line");
  const char* begin = text->data() + line + 1 + key.size();
  const char* end = text->data() + text->size();
  while (begin < end && (*begin == ' ' || *begin == '\t')) ++begin;
  uint32_t id = 0;
  auto [next, ec] = std::from_chars(begin, end, id);
  if (ec != std::errc() || next == begin) return Error(path + ": unreadable " + std::string(key) + " line");
  return id;
}

// This thread's file-system uid and gid for the lifetime of the object (raw system calls: they
// change the calling thread only), then back. The kernel drops the file-system capabilities while
// the fsuid is not 0 and gives them back from the permitted set when it returns to 0.
class ThreadFsIds {
 public:
  ThreadFsIds(uid_t uid, gid_t gid)
      : old_gid_(static_cast<gid_t>(::syscall(SYS_setfsgid, gid))), old_uid_(static_cast<uid_t>(::syscall(SYS_setfsuid, uid))) {}
  ~ThreadFsIds() {
    ::syscall(SYS_setfsuid, old_uid_);
    ::syscall(SYS_setfsgid, old_gid_);
  }
  ThreadFsIds(const ThreadFsIds&) = delete;
  ThreadFsIds& operator=(const ThreadFsIds&) = delete;

 private:
  gid_t old_gid_;
  uid_t old_uid_;
};

}  // namespace

Result<std::string> processExe(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/exe";
  char target[4096];
  ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
  if (n < 0 && (errno == EACCES || errno == EPERM)) {
    // /proc/PID/exe takes ptrace read access: root without CAP_SYS_PTRACE (vmmd.service's
    // CapabilityBoundingSet) has it only to processes of its own file-system ids. A worker runs as
    // its own uid and gid (--worker-ids): read the link as that uid and gid for the moment.
    auto uid = statusId(pid, "Uid:");
    auto gid = statusId(pid, "Gid:");
    if (uid && gid) {
      ThreadFsIds as_the_process(*uid, *gid);
      n = ::readlink(path.c_str(), target, sizeof target - 1);
    } else {
      errno = EACCES;
    }
  }
  if (n < 0) return Error::fromErrno("readlink " + path, errno == ESRCH ? ENOENT : errno);
  return std::string(target, static_cast<size_t>(n));
}

Result<std::vector<std::string>> processArgv(pid_t pid) {
  auto text = readProcFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!text) return text.error();
  std::vector<std::string> argv;
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\0', start);
    if (end == std::string::npos) end = text->size();
    argv.emplace_back(text->substr(start, end - start));
    start = end + 1;
  }
  return argv;
}

Result<uid_t> processUid(pid_t pid) {
  auto uid = statusId(pid, "Uid:");
  if (!uid) return uid.error();
  return static_cast<uid_t>(*uid);
}

std::optional<pid_t> parseFlockHolder(std::string_view locks, uint64_t dev_major, uint64_t dev_minor, uint64_t inode) {
  char wanted[64];
  std::snprintf(wanted, sizeof wanted, "%02llx:%02llx:%llu", static_cast<unsigned long long>(dev_major),
                static_cast<unsigned long long>(dev_minor), static_cast<unsigned long long>(inode));
  size_t pos = 0;
  while (pos < locks.size()) {
    size_t end = locks.find('\n', pos);
    if (end == std::string_view::npos) end = locks.size();
    std::string_view line = locks.substr(pos, end - pos);
    pos = end + 1;
    // "1: FLOCK  ADVISORY  WRITE 4242 00:1f:1234 0 EOF"; blocked waiters ("1: -> FLOCK ...") hold nothing.
    if (line.find("->") != std::string_view::npos || line.find("FLOCK") == std::string_view::npos) continue;
    std::vector<std::string_view> fields;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && line[i] == ' ') ++i;
      size_t j = line.find(' ', i);
      if (j == std::string_view::npos) j = line.size();
      if (j > i) fields.push_back(line.substr(i, j - i));
      i = j;
    }
    if (fields.size() < 6 || fields[5] != wanted) continue;
    pid_t pid = 0;
    auto [ptr, ec] = std::from_chars(fields[4].data(), fields[4].data() + fields[4].size(), pid);
    if (ec == std::errc() && pid > 0) return pid;
  }
  return std::nullopt;
}

std::optional<pid_t> flockHolder(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) < 0) return std::nullopt;
  // Only a held lock counts: an empty or stale pid file without one names nobody.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return std::nullopt;
  auto locks = readProcFile("/proc/locks");
  if (!locks) return std::nullopt;
  return parseFlockHolder(*locks, major(st.st_dev), minor(st.st_dev), st.st_ino);
}

}  // namespace vmmd::daemon
