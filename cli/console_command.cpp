// console NAME: attach the terminal to the VM's serial console through vmmd's relay socket (the
// relay first replays what the guest printed recently). Ctrl-] detaches; the guest keeps running.
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/unique_fd.h"
#include "cli/cli.h"
#include "qmp/unix_socket.h"

namespace vmmd::cli {
namespace {

constexpr char kDetachKey = 0x1d;  // Ctrl-]

// Raw terminal for the session, restored however the command ends.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (!::isatty(fd_) || ::tcgetattr(fd_, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

bool writeAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

int runConsoleCommand(const Invocation& inv) {
  if (inv.args.size() != 1) return failWith(kUsage, "usage: vmctl console NAME");
  const std::string& name = inv.args[0];
  std::string path;
  {
    auto conn = connectToVmmd(inv.globals);
    if (!conn.client) return conn.exit_code;
    auto info = callOnVm(*conn.client, "vm-info", name);
    if (!info) return kVmmdError;
    if (!info->HasMember("console") || !(*info)["console"].IsString()) {
      return failWith(kVmmdError, "VM '" + name + "' has no console to attach to (state " +
                                      std::string((*info)["state"].GetString()) + ")");
    }
    path = (*info)["console"].GetString();
  }
  auto sock = qmp::connectUnix(path);
  if (!sock) return failWith(kLocalError, "VM '" + name + "': console: " + sock.error().message());

  bool tty = ::isatty(STDIN_FILENO);
  if (tty) std::fprintf(stderr, "Connected to the console of %s; Ctrl-] detaches.\r\n", name.c_str());
  RawTerminal raw(STDIN_FILENO);
  bool input_open = true;
  char buf[16 * 1024];
  for (;;) {
    pollfd fds[2] = {{sock->get(), POLLIN, 0}, {STDIN_FILENO, static_cast<short>(input_open ? POLLIN : 0), 0}};
    if (::poll(fds, input_open ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      return failWith(kLocalError, Error::fromErrno("poll").message());
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(sock->get(), buf, sizeof buf);
      if (n <= 0) {
        if (tty) std::fprintf(stderr, "\r\n");
        std::fprintf(stderr, "vmctl: the console of %s closed (the VM stopped)\n", name.c_str());
        return kOk;
      }
      if (!writeAll(STDOUT_FILENO, buf, static_cast<size_t>(n))) return kLocalError;
    }
    if (input_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        input_open = false;  // piped input ended: keep showing output
        continue;
      }
      if (void* key = std::memchr(buf, kDetachKey, static_cast<size_t>(n))) {
        writeAll(sock->get(), buf, static_cast<size_t>(static_cast<char*>(key) - buf));
        if (tty) std::fprintf(stderr, "\r\n");
        return kOk;
      }
      if (!writeAll(sock->get(), buf, static_cast<size_t>(n))) return failWith(kLocalError, "console write failed");
    }
  }
}

}  // namespace vmmd::cli
