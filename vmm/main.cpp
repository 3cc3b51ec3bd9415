// vmm: one worker process per guest. argv (QEMU-compatible) -> MachineConfig -> Worker -> run.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/unique_fd.h"
#include "vmm/backends/fd_sets.h"
#include "vmm/config/option_parser.h"
#include "vmm/worker.h"

namespace {

constexpr const char* kVersion = "vmm 0.1.0 (QEMU-compatible command line and QMP)";

int fail(const std::string& message) {
  vmmd::log::error(message);
  return 1;
}

// -pidfile: created, locked for as long as the process lives (a second worker with the same
// pidfile fails, as QEMU's), removed on a clean exit.
class PidFile {
 public:
  vmmd::Status create(const std::string& path, const vmmd::FileOpener& files) {
    auto opened = files.open(path, O_WRONLY | O_CREAT, 0644);
    if (!opened) return opened.error().withContext("cannot open pid file");
    vmmd::UniqueFd fd = std::move(*opened);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) return vmmd::Error::fromErrno("cannot lock pid file " + path);
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) < 0 || ::write(fd.get(), pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
      return vmmd::Error::fromErrno("cannot write pid file " + path);
    }
    path_ = path;
    fd_ = std::move(fd);
    return {};
  }
  ~PidFile() {
    if (fd_) ::unlink(path_.c_str());
  }

 private:
  std::string path_;
  vmmd::UniqueFd fd_;
};

// -daemonize: the parent waits until the child says it is ready (or failed), so the caller's
// exit status means what QEMU's means.
class Daemonizer {
 public:
  // Returns in the child; the parent exits inside.
  vmmd::Status detach() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) return vmmd::Error::fromErrno("pipe");
    pid_t pid = ::fork();
    if (pid < 0) return vmmd::Error::fromErrno("fork");
    if (pid > 0) {
      ::close(fds[1]);
      char status = 1;
      ssize_t n;
      do {
        n = ::read(fds[0], &status, 1);
      } while (n < 0 && errno == EINTR);
      ::_exit(n == 1 ? status : 1);
    }
    ::close(fds[0]);
    notify_.reset(fds[1]);
    ::setsid();
    // Opened now: once the worker has started, -sandbox on lets it open no file.
    null_.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
    return {};
  }
  void ready() {
    if (!notify_) return;
    char ok = 0;
    (void)!::write(notify_.get(), &ok, 1);
    notify_.reset();
    if (null_) {
      ::dup2(null_.get(), STDIN_FILENO);
      ::dup2(null_.get(), STDOUT_FILENO);
      ::dup2(null_.get(), STDERR_FILENO);
    }
    null_.reset();
  }

 private:
  vmmd::UniqueFd notify_;
  vmmd::UniqueFd null_;
};

}  // namespace

int main(int argc, char** argv) {
  vmmd::log::setProgram("vmm");
  vmmd::log::setLevelFromEnvironment("VMM_LOG");
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& arg : args) {
    if (arg == "-h" || arg == "-help" || arg == "--help") {
      std::fputs(vmmd::config::usageText().c_str(), stdout);
      return 0;
    }
    if (arg == "-version" || arg == "--version") {
      std::printf("%s\n", kVersion);
      return 0;
    }
  }
  vmmd::log::debug("starting");  // the first line of the start-up timeline (VMM_LOG=debug)
  auto config = vmmd::config::parseCommandLine(args);
  if (!config) return fail(config.error().message());

  // Inherited descriptors are checked and taken before anything else is opened.
  auto fd_sets = vmmd::FdSets::adopt(*config);
  if (!fd_sets) return fail(fd_sets.error().message());

  Daemonizer daemonizer;
  if (config->daemonize) {
    for (const auto& chardev : config->chardevs) {
      if (chardev.backend == vmmd::config::ChardevConfig::Backend::Stdio) return fail("-daemonize cannot be used with stdio");
    }
    if (auto st = daemonizer.detach(); !st) return fail(st.error().message());
  }
  PidFile pidfile;
  if (!config->pidfile.empty()) {
    if (auto st = pidfile.create(config->pidfile, *fd_sets); !st) return fail(st.error().message());
  }

  vmmd::Worker worker(std::move(*config), std::move(*fd_sets));
  if (auto st = worker.start(); !st) return fail(st.error().message());
  daemonizer.ready();
  return worker.run();
}
