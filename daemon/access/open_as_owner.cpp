#include "daemon/access/open_as_owner.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "base/fd_passing.h"

namespace vmmd::daemon {
namespace {

// Where an attempt stopped; sent from the child as plain integers (no allocation after fork).
enum class Stage : int32_t { kOpened, kCredentials, kLookup, kFileType, kOpen };

struct Outcome {
  Stage stage = Stage::kOpened;
  int32_t error = 0;   // errno of the failed step
  uint32_t mode = 0;   // st_mode, for kFileType
};

// "/proc/self/fd/N" without allocating (async-signal-safe, for the child).
void procFdPath(int fd, std::array<char, 32>& out) {
  constexpr const char kPrefix[] = "/proc/self/fd/";
  std::memcpy(out.data(), kPrefix, sizeof kPrefix - 1);
  char digits[12];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + fd % 10);
    fd /= 10;
  } while (fd > 0);
  size_t at = sizeof kPrefix - 1;
  while (n > 0) out[at++] = digits[--n];
  out[at] = '\0';
}

// The open itself, for the child and for root alike: system calls only, no allocation.
Outcome openChecked(const char* path, int flags, bool block_allowed, int& fd_out) {
  int located = ::open(path, O_PATH | O_CLOEXEC);
  if (located < 0) return {Stage::kLookup, errno, 0};
  struct stat st {};
  if (::fstat(located, &st) < 0) {
    int err = errno;
    ::close(located);
    return {Stage::kLookup, err, 0};
  }
  if (!S_ISREG(st.st_mode) && !(block_allowed && S_ISBLK(st.st_mode))) {
    ::close(located);
    return {Stage::kFileType, 0, st.st_mode};
  }
  std::array<char, 32> reopen_path{};
  procFdPath(located, reopen_path);
  int fd = ::open(reopen_path.data(), flags | O_CLOEXEC | O_NOCTTY);
  int err = errno;
  ::close(located);
  if (fd < 0) return {Stage::kOpen, err, 0};
  fd_out = fd;
  return {};
}

// Runs in the forked child: take the owner's credentials, open, send the outcome (with the fd).
[[noreturn]] void childOpen(int channel, const Owner& owner, const char* path, int flags) {
  // vmmd's descriptors (clients, workers' sockets) are not the child's to hold: a child stuck in an
  // open (a hung NFS server) must not keep a client's connection alive. Best effort (Linux 5.9+).
  if (channel > 3) ::syscall(SYS_close_range, 3u, static_cast<unsigned>(channel - 1), 0u);
  ::syscall(SYS_close_range, static_cast<unsigned>(channel + 1), ~0u, 0u);
  Outcome outcome;
  int fd = -1;
  const std::vector<gid_t>& groups = owner.groups;
  // Raw system calls: they change this (only) thread's credentials, without glibc's machinery.
  if (::syscall(SYS_setgroups, groups.size(), groups.data()) < 0 ||
      ::syscall(SYS_setresgid, owner.gid, owner.gid, owner.gid) < 0 ||
      ::syscall(SYS_setresuid, owner.uid, owner.uid, owner.uid) < 0) {
    outcome = {Stage::kCredentials, errno, 0};
  } else {
    outcome = openChecked(path, flags, /*block_allowed=*/false, fd);
  }
  ssize_t sent = sendWithFd(channel, &outcome, sizeof outcome, fd);
  ::_exit(sent == static_cast<ssize_t>(sizeof outcome) ? 0 : 1);
}

Result<Outcome> receiveOutcome(int channel, UniqueFd& fd) {
  Outcome outcome;
  iovec iov{&outcome, sizeof outcome};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t got;
  do got = ::recvmsg(channel, &msg, MSG_CMSG_CLOEXEC);
  while (got < 0 && errno == EINTR);
  if (got < 0) return Error::fromErrno("receive the file from the opening process");
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(cmsg), sizeof(int));
      fd.reset(received);
    }
  }
  if (got != static_cast<ssize_t>(sizeof outcome)) return Error("the opening process ended without an answer");
  if (outcome.stage == Stage::kOpened && !fd) return Error("the opening process sent no file");
  return outcome;
}

Result<Outcome> openInChild(const Owner& owner, const std::string& path, int flags, UniqueFd& fd) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) return Error::fromErrno("socketpair");
  UniqueFd ours(pair[0]), theirs(pair[1]);
  pid_t pid = ::fork();
  if (pid < 0) return Error::fromErrno("fork to open " + path);
  if (pid == 0) childOpen(theirs.get(), owner, path.c_str(), flags);
  theirs.reset();
  auto outcome = receiveOutcome(ours.get(), fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return outcome;
}

const char* fileTypeName(uint32_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

Error describeFailure(const Owner& owner, const std::string& path, const Outcome& outcome) {
  switch (outcome.stage) {
    case Stage::kCredentials:
      return Error::fromErrno("cannot take the credentials of " + owner.describe() + " to open " + path, outcome.error);
    case Stage::kFileType:
      if (S_ISBLK(outcome.mode)) return Error(path + ": a block device: only root may use block devices", EPERM);
      return Error(path + ": " + fileTypeName(outcome.mode) + ", not an image or kernel file", EINVAL);
    case Stage::kLookup:
    case Stage::kOpen:
      if (outcome.error == EACCES || outcome.error == EPERM) {
        return Error(path + ": permission denied for " + owner.describe(), outcome.error);
      }
      return Error::fromErrno(path, outcome.error);
    case Stage::kOpened: break;
  }
  return Error(path + ": opened");
}

}  // namespace

Result<UniqueFd> openAsOwner(const Owner& owner, const std::string& path, int flags) {
  if (flags & (O_CREAT | O_TRUNC | O_PATH | O_TMPFILE)) return Error(path + ": openAsOwner opens existing files only", EINVAL);
  if (path.empty() || path.find('\0') != std::string::npos) return Error("an empty or malformed path", EINVAL);
  UniqueFd fd;
  Outcome outcome;
  if (owner.isRoot()) {
    // Root's own rights: vmmd's, no process needed. Block devices allowed.
    int opened = -1;
    outcome = openChecked(path.c_str(), flags, /*block_allowed=*/true, opened);
    fd.reset(opened);
  } else if (::geteuid() != 0 && owner.uid == ::geteuid()) {
    // An unprivileged vmmd (tests, a user's own daemon) serving its own user: its rights are theirs.
    int opened = -1;
    outcome = openChecked(path.c_str(), flags, /*block_allowed=*/false, opened);
    fd.reset(opened);
  } else {
    auto received = openInChild(owner, path, flags, fd);
    if (!received) return received.error().withContext(path);
    outcome = *received;
  }
  if (outcome.stage != Stage::kOpened) return describeFailure(owner, path, outcome);
  return fd;
}

std::function<Result<UniqueFd>(const std::string& path, int flags)> ownerFileOpener(Owner owner) {
  return [owner = std::move(owner)](const std::string& path, int flags) { return openAsOwner(owner, path, flags); };
}

}  // namespace vmmd::daemon
