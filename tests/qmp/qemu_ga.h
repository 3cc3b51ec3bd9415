// The real qemu-ga on the host for tests: `qemu-ga -m unix-listen -p SOCKET -t STATEDIR` in a
// temporary directory, killed (SIGKILL) by stop() or the destructor.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "qmp/unix_socket.h"

extern char** environ;

namespace vmmd::qmp::testing {

inline std::string findQemuGa() {
  for (const char* p : {"/usr/sbin/qemu-ga", "/usr/bin/qemu-ga"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return {};
}

class QemuGa {
 public:
  explicit QemuGa(std::string tag) {
    dir_ = "/tmp/vmmd-qga-" + std::to_string(::getpid()) + "-" + tag;
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/state");
  }
  ~QemuGa() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  QemuGa(const QemuGa&) = delete;
  QemuGa& operator=(const QemuGa&) = delete;

  const std::string& socket() const { return socket_; }

  // Starts the agent and waits (up to 10 s) for its socket; false when it could not.
  bool start() {
    std::string bin = findQemuGa();
    if (bin.empty()) return false;
    socket_ = dir_ + "/qga.sock";
    std::filesystem::remove(socket_);
    std::vector<std::string> args = {bin, "-m", "unix-listen", "-p", socket_, "-t", dir_ + "/state", "-l",
                                     dir_ + "/qga.log"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, bin.c_str(), nullptr, nullptr, argv.data(), environ) != 0) return false;
    // Until it listens: the socket file exists from its bind, a moment before its listen().
    for (int i = 0; i < 1000; ++i) {
      if (connectUnix(socket_).ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

}  // namespace vmmd::qmp::testing
