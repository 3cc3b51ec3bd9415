// One ssh process carrying a byte stream to the destination of a migration: its stdin and stdout
// are one end of a socketpair, the caller gets the other end (a Unix stream socket, so it can go to
// a QMP client or, with getfd, to a worker as `migrate fd:`). What ssh writes on stderr is kept for
// the error message ("ssh: connect to host 10.0.0.2 port 22: Connection refused").
//
// The link owns the process: destroying it sends SIGTERM to an ssh that still runs (SIGKILL 2 s
// later), and the loop reaps it whenever it ends, so no child outlives its use or stays a zombie.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd::daemon {

class SshLink {
 public:
  // Runs argv (argv[0] looked up on PATH) with stdin and stdout on a new socketpair and stderr on
  // a pipe; `local` gets the other end of the socketpair.
  static Result<std::unique_ptr<SshLink>> spawn(uv_loop_t* loop, const std::vector<std::string>& argv, UniqueFd& local);
  ~SshLink();
  SshLink(const SshLink&) = delete;
  SshLink& operator=(const SshLink&) = delete;

  bool ended() const;
  // Why ssh ended badly: its stderr, else "ssh exited with status N" / "ssh killed by signal N";
  // empty while it runs, or after a clean exit that said nothing.
  std::string failure() const;
  // done(failure()) once ssh has ended and its stderr is read (at once if it has); an ssh still
  // running after `grace_ms` is killed first.
  void whenEnded(uint64_t grace_ms, std::function<void(std::string failure)> done);

 private:
  struct Child;
  explicit SshLink(Child* child) : child_(child) {}
  Child* child_;  // freed by the loop once the process is reaped and its handles are closed
};

}  // namespace vmmd::daemon
