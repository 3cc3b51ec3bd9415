// vmctl stdio-bridge: stdin -> the Unix socket --socket names, and that socket -> stdout, until
// the socket's side closes (or the ssh session that runs the bridge goes). It is what a
// migration's source vmmd runs on the destination host through ssh (as libvirt's
// virt-ssh-helper): one bridge to the destination vmmd's control socket, one to the incoming.sock
// of the arriving VM. vmmd sees the bridge's credentials (the ssh user's) on the
// connection, as with any local client.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "cli/cli.h"
#include "qmp/unix_socket.h"

namespace vmmd::cli {
namespace {

// One direction: bytes read from `from` wait in `pending` until `to` takes them.
struct Direction {
  int from;
  int to;
  std::string pending;
  bool source_ended = false;
  bool done() const { return source_ended && pending.empty(); }
};

enum class Step { kMore, kReaderGone, kFailed };

// Moves what poll said is ready: a read into an empty buffer, or a write out of a full one.
Step pump(Direction& d, short revents_from, short revents_to, std::string& why) {
  if (!d.pending.empty() && (revents_to & (POLLOUT | POLLERR | POLLHUP))) {
    ssize_t n = ::write(d.to, d.pending.data(), d.pending.size());
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      if (errno == EPIPE || errno == ECONNRESET) return Step::kReaderGone;
      why = std::strerror(errno);
      return Step::kFailed;
    }
    if (n > 0) d.pending.erase(0, static_cast<size_t>(n));
  } else if (d.pending.empty() && !d.source_ended && (revents_from & (POLLIN | POLLERR | POLLHUP))) {
    char buffer[64 * 1024];
    ssize_t n = ::read(d.from, buffer, sizeof buffer);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      if (errno != ECONNRESET) {
        why = std::strerror(errno);
        return Step::kFailed;
      }
      n = 0;
    }
    if (n == 0) d.source_ended = true;
    if (n > 0) d.pending.assign(buffer, static_cast<size_t>(n));
  }
  return Step::kMore;
}

}  // namespace

int runStdioBridge(const Invocation& inv) {
  if (!inv.args.empty()) return failWith(kUsage, "usage: vmctl [--socket PATH] stdio-bridge");
  ::signal(SIGPIPE, SIG_IGN);  // a closed reader is an EPIPE here, the end of that direction
  auto socket = qmp::connectUnix(inv.globals.socket, false);
  if (!socket) return failWith(kUnreachable, "stdio-bridge: cannot connect to " + inv.globals.socket + ": " + socket.error().message());
  const int sock = socket->get();
  ::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL) | O_NONBLOCK);
  Direction out{STDIN_FILENO, sock, {}};
  Direction back{sock, STDOUT_FILENO, {}};
  bool shut = false;
  // The end of stdin is passed on as a half-close (shutdown SHUT_WR): a migration stream's source
  // does that, then waits for the destination's word that it loaded the stream. The bridge ends
  // when the socket's side has closed and all it sent is out, or when no one reads stdout.
  while (!back.done()) {
    if (out.done() && !shut) {
      ::shutdown(sock, SHUT_WR);
      shut = true;
    }
    pollfd fds[3] = {{STDIN_FILENO, 0, 0}, {sock, 0, 0}, {STDOUT_FILENO, 0, 0}};
    if (out.pending.empty() && !out.source_ended) fds[0].events |= POLLIN;
    if (!out.pending.empty()) fds[1].events |= POLLOUT;
    if (back.pending.empty() && !back.source_ended) fds[1].events |= POLLIN;
    if (!back.pending.empty()) fds[2].events |= POLLOUT;
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return failWith(kLocalError, std::string("stdio-bridge: poll: ") + std::strerror(errno));
    }
    // The ssh session went (its reader of our stdout closed): nothing more can be passed back.
    if (back.pending.empty() && (fds[2].revents & (POLLERR | POLLHUP))) return kOk;
    std::string why;
    Step step = pump(out, fds[0].revents, fds[1].revents, why);
    if (step == Step::kReaderGone) {  // the socket's side stopped reading; what it sends still comes back
      out.pending.clear();
      out.source_ended = true;
    }
    if (step == Step::kFailed) return failWith(kLocalError, "stdio-bridge: " + why);
    step = pump(back, fds[1].revents, fds[2].revents, why);
    if (step == Step::kReaderGone) return kOk;
    if (step == Step::kFailed) return failWith(kLocalError, "stdio-bridge: " + why);
  }
  return kOk;
}

}  // namespace vmmd::cli
