#include "vmm/migration/migration_uri.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "qmp/unix_socket.h"
#include "vmm/migration/tcp_connect.h"

namespace vmmd::migration {
namespace {

Error badUri() { return Error("Parameter 'uri' expects a valid migration protocol"); }

Result<addrinfo*> resolve(const MigrationUri& uri, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  const char* host = uri.host.empty() || (passive && uri.host == "0") ? nullptr : uri.host.c_str();
  int rc = ::getaddrinfo(host, uri.port.c_str(), &hints, &found);
  if (rc != 0) return Error("address resolution failed for " + uri.host + ":" + uri.port + ": " + gai_strerror(rc));
  return found;
}

// Starts `command` with /bin/sh, its stdin (source) or stdout (destination) on a pipe whose
// other end is returned.
Result<Channel> startCommand(const std::string& command, bool to_stdin) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Error::fromErrno("exec: pipe");
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) return Error::fromErrno("exec: fork");
  if (pid == 0) {
    int child_end = to_stdin ? read_end.get() : write_end.get();
    ::dup2(child_end, to_stdin ? STDIN_FILENO : STDOUT_FILENO);  // dup2 clears close-on-exec
    ::signal(SIGPIPE, SIG_DFL);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  Channel channel;
  channel.fd = to_stdin ? std::move(write_end) : std::move(read_end);
  channel.child = ChildProcess(pid);
  return channel;
}

Result<UniqueFd> takeFd(const MigrationUri& uri, const FdLookup& fds) {
  if (auto fd = fds(uri.fd_name)) return std::move(*fd);
  // A number names a descriptor the process inherited (QEMU accepts both).
  if (!uri.fd_name.empty() && uri.fd_name.find_first_not_of("0123456789") == std::string::npos && uri.fd_name.size() < 8) {
    int number = std::stoi(uri.fd_name);
    if (number > 2 && ::fcntl(number, F_GETFD) >= 0) {
      (void)::fcntl(number, F_SETFD, FD_CLOEXEC);
      return UniqueFd(number);
    }
  }
  return Error("File descriptor named '" + uri.fd_name + "' has not been found");
}

}  // namespace

Result<MigrationUri> parseMigrationUri(const std::string& uri) {
  auto colon = uri.find(':');
  if (colon == std::string::npos) return badUri();
  std::string scheme = uri.substr(0, colon), rest = uri.substr(colon + 1);
  MigrationUri parsed{};
  if (scheme == "unix") {
    parsed.kind = MigrationUri::Kind::Unix;
    parsed.path = rest;
    if (rest.empty()) return badUri();
  } else if (scheme == "tcp") {
    parsed.kind = MigrationUri::Kind::Tcp;
    auto port_colon = rest.rfind(':');
    if (port_colon == std::string::npos) return badUri();
    parsed.host = rest.substr(0, port_colon);
    parsed.port = rest.substr(port_colon + 1);
    if (parsed.host.size() >= 2 && parsed.host.front() == '[' && parsed.host.back() == ']') {
      parsed.host = parsed.host.substr(1, parsed.host.size() - 2);
    }
    // QEMU's tcp: takes options after a comma (",to=", ",ipv4"); vmm has none.
    if (parsed.port.empty() || parsed.port.find(',') != std::string::npos) return badUri();
  } else if (scheme == "fd") {
    parsed.kind = MigrationUri::Kind::Fd;
    parsed.fd_name = rest;
    if (rest.empty()) return badUri();
  } else if (scheme == "file") {
    parsed.kind = MigrationUri::Kind::File;
    parsed.path = rest;
    if (rest.empty()) return badUri();
    // QEMU's file: takes ",offset=N" (the stream at that offset of the file); vmm does not.
    if (rest.find(",offset=") != std::string::npos) return Error("file: migration URI: offset= is not supported by vmm");
  } else if (scheme == "exec") {
    parsed.kind = MigrationUri::Kind::Exec;
    parsed.command = rest;
    if (rest.empty()) return badUri();
  } else {
    return badUri();
  }
  return parsed;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    ChildProcess dropped(std::move(*this));
    pid_ = std::exchange(other.pid_, -1);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

Status ChildProcess::wait() {
  if (pid_ <= 0) return {};
  int status = 0;
  pid_t pid = std::exchange(pid_, -1);
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Error::fromErrno("exec: waitpid");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (WIFEXITED(status)) return Error("exec: the command exited with status " + std::to_string(WEXITSTATUS(status)));
  return Error("exec: the command was killed by signal " + std::to_string(WTERMSIG(status)));
}

PendingFile& PendingFile::operator=(PendingFile&& other) noexcept {
  if (this != &other) {
    PendingFile dropped(std::move(*this));
    partial_ = std::move(other.partial_);
    final_ = std::move(other.final_);
    other.partial_.clear();
  }
  return *this;
}

PendingFile::~PendingFile() {
  if (!partial_.empty()) ::unlink(partial_.c_str());
}

Status PendingFile::commit(int fd) {
  if (partial_.empty()) return {};
  if (::fdatasync(fd) != 0) return Error::fromErrno("file: sync " + partial_);
  if (::rename(partial_.c_str(), final_.c_str()) != 0) return Error::fromErrno("file: rename " + partial_ + " to " + final_);
  partial_.clear();
  return {};
}

Result<Channel> openOutgoing(const MigrationUri& uri, const FdLookup& fds, const std::atomic<bool>& cancelled) {
  Channel channel;
  switch (uri.kind) {
    case MigrationUri::Kind::Unix: {
      auto fd = qmp::connectUnix(uri.path);
      if (!fd) return fd.error().withContext("Failed to connect to '" + uri.path + "'");
      channel.fd = std::move(*fd);
      return channel;
    }
    case MigrationUri::Kind::Tcp: {
      auto found = resolve(uri, false);
      if (!found) return found.error();
      Error last("Failed to connect to '" + uri.host + ":" + uri.port + "'");
      for (addrinfo* ai = *found; ai; ai = ai->ai_next) {
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
        if (!fd) continue;
        auto connected = connectCancellable(fd, ai->ai_addr, ai->ai_addrlen, cancelled, uri.host + ":" + uri.port);
        if (connected) {
          int one = 1;
          (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          channel.fd = std::move(fd);
          break;
        }
        last = connected.error();
        if (cancelled.load()) break;
      }
      ::freeaddrinfo(*found);
      if (!channel.fd) return last;
      return channel;
    }
    case MigrationUri::Kind::Fd: {
      auto fd = takeFd(uri, fds);
      if (!fd) return fd.error();
      channel.fd = std::move(*fd);
      return channel;
    }
    case MigrationUri::Kind::Exec:
      return startCommand(uri.command, /*to_stdin=*/true);
    case MigrationUri::Kind::File: {
      std::string partial = uri.path + ".partial";
      channel.fd = UniqueFd(::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!channel.fd) return Error::fromErrno("Failed to open file '" + partial + "'");
      channel.file = PendingFile(partial, uri.path);
      return channel;
    }
  }
  return badUri();
}

Result<IncomingEndpoint> openIncoming(const MigrationUri& uri, const FdLookup& fds) {
  IncomingEndpoint endpoint;
  switch (uri.kind) {
    case MigrationUri::Kind::Unix: {
      // Replaces a socket a dead process left there (as QEMU unlinks it), never another file.
      auto listener = qmp::listenUnix(uri.path, 1);
      if (!listener) return listener.error().withContext("Failed to bind socket to " + uri.path);
      endpoint.listener = std::move(*listener);
      return endpoint;
    }
    case MigrationUri::Kind::Tcp: {
      auto found = resolve(uri, true);
      if (!found) return found.error();
      Error last("Failed to find an available port for " + uri.host + ":" + uri.port);
      for (addrinfo* ai = *found; ai; ai = ai->ai_next) {
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
        if (!fd) continue;
        int one = 1;
        (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd.get(), 1) == 0) {
          endpoint.listener = std::move(fd);
          break;
        }
        last = Error::fromErrno("Failed to bind socket to " + uri.host + ":" + uri.port);
      }
      ::freeaddrinfo(*found);
      if (!endpoint.listener) return last;
      return endpoint;
    }
    case MigrationUri::Kind::Fd: {
      auto fd = takeFd(uri, fds);
      if (!fd) return fd.error();
      endpoint.stream.fd = std::move(*fd);
      return endpoint;
    }
    case MigrationUri::Kind::Exec: {
      auto channel = startCommand(uri.command, /*to_stdin=*/false);
      if (!channel) return channel.error();
      endpoint.stream = std::move(*channel);
      return endpoint;
    }
    case MigrationUri::Kind::File:
      endpoint.stream.fd = UniqueFd(::open(uri.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!endpoint.stream.fd) return Error::fromErrno("Failed to open file '" + uri.path + "'");
      return endpoint;
  }
  return badUri();
}

}  // namespace vmmd::migration
