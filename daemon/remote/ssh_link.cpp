#include "daemon/remote/ssh_link.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/uv_handle.h"

namespace vmmd::daemon {
namespace {

constexpr size_t kStderrKept = 4096;
constexpr uint64_t kTermGraceMs = 2000;
// After ssh exits, how long its stderr may still be read (a ProxyCommand may hold the pipe open).
constexpr uint64_t kStderrDrainMs = 500;

}  // namespace

struct SshLink::Child {
  uv_process_t process{};
  uv_pipe_t err{};
  uv_timer_t timer{};
  bool owned = true;  // the SshLink still exists
  bool exited = false;
  bool err_open = true;
  int64_t status = 0;
  int term_signal = 0;
  int open_handles = 0;
  std::string text;
  std::function<void(std::string)> on_end;
  char buffer[1024];

  bool ended() const { return exited && !err_open; }

  std::string failure() const {
    if (!ended()) return "";
    // Its lines joined, less the notice that no_verify's unknown host key was accepted.
    std::string out;
    size_t at = 0;
    while (at < text.size()) {
      size_t end = text.find('\n', at);
      std::string line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
      at = end == std::string::npos ? text.size() : end + 1;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (line.empty() || line.rfind("Warning: Permanently added", 0) == 0) continue;
      out += (out.empty() ? "" : " ") + line;
    }
    if (!out.empty()) return out;
    if (term_signal) return "ssh killed by signal " + std::to_string(term_signal);
    if (status) return "ssh exited with status " + std::to_string(status);
    return "";
  }

  void closeOne(uv_handle_t* handle) {
    if (uv_is_closing(handle)) return;
    uv_close(handle, [](uv_handle_t* h) {
      auto* c = static_cast<Child*>(h->data);
      if (--c->open_handles == 0) delete c;
    });
  }

  // Ended: the timer goes, the owner hears of it, and the process handle is closed last.
  void maybeFinish() {
    if (!ended()) return;
    uv_timer_stop(&timer);
    if (auto done = std::exchange(on_end, nullptr); done && owned) done(failure());
    if (!owned) closeAll();
  }

  void closeAll() {
    closeOne(reinterpret_cast<uv_handle_t*>(&timer));
    if (exited) closeOne(reinterpret_cast<uv_handle_t*>(&process));
    if (!err_open) closeOne(reinterpret_cast<uv_handle_t*>(&err));
  }

  void stopReadingErr() {
    if (!err_open) return;
    err_open = false;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&err));
  }

  void startTimer(uint64_t ms, void (*fire)(uv_timer_t*)) { uv_timer_start(&timer, fire, ms, 0); }
};

Result<std::unique_ptr<SshLink>> SshLink::spawn(uv_loop_t* loop, const std::vector<std::string>& argv, UniqueFd& local) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) return Error::fromErrno("socketpair for ssh");
  UniqueFd ours(pair[0]), theirs(pair[1]);
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) < 0) return Error::fromErrno("pipe for ssh's stderr");
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  auto child = std::make_unique<Child>();
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_INHERIT_FD;
  stdio[0].data.fd = theirs.get();
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = theirs.get();
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = err_write.get();
  uv_process_options_t options{};
  options.file = args[0];
  options.args = args.data();
  options.stdio = stdio;
  options.stdio_count = 3;
  options.exit_cb = [](uv_process_t* process, int64_t status, int term_signal) {
    auto* c = static_cast<Child*>(process->data);
    c->exited = true;
    c->status = status;
    c->term_signal = term_signal;
    if (c->err_open) {
      // Whatever it wrote last is normally in the pipe already; give it a moment, no more.
      c->startTimer(kStderrDrainMs, [](uv_timer_t* t) {
        auto* cc = static_cast<Child*>(t->data);
        cc->stopReadingErr();
        cc->maybeFinish();
      });
      return;
    }
    c->maybeFinish();
  };
  Child* raw = child.get();
  raw->process.data = raw->err.data = raw->timer.data = raw;
  uv_timer_init(loop, &raw->timer);
  uv_pipe_init(loop, &raw->err, 0);
  raw->open_handles = 3;
  int rc = uv_spawn(loop, &raw->process, &options);
  if (rc < 0) {
    // libuv wants even a failed spawn's handle closed; the Child goes with its last handle.
    child.release();
    raw->owned = false;
    raw->exited = true;
    raw->err_open = false;
    raw->closeAll();
    return Error(std::string("cannot run ") + argv[0] + ": " + uv_strerror(rc));
  }
  theirs.reset();
  err_write.reset();  // ssh's copy keeps the pipe open
  uv_pipe_open(&raw->err, err_read.release());
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&raw->err),
      readIntoBuffer<Child>,
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* c = static_cast<Child*>(s->data);
        if (n > 0) {
          // The last lines are the ones that say why it ended.
          c->text.append(buf->base, static_cast<size_t>(n));
          if (c->text.size() > kStderrKept) c->text.erase(0, c->text.size() - kStderrKept);
          return;
        }
        if (n == 0) return;
        c->stopReadingErr();
        c->maybeFinish();
      });
  local = std::move(ours);
  return std::unique_ptr<SshLink>(new SshLink(child.release()));
}

SshLink::~SshLink() {
  Child* c = child_;
  c->owned = false;
  c->on_end = nullptr;
  if (c->ended()) {
    c->closeAll();
    return;
  }
  if (!c->exited) {
    uv_process_kill(&c->process, SIGTERM);
    c->startTimer(kTermGraceMs, [](uv_timer_t* t) {
      auto* cc = static_cast<Child*>(t->data);
      if (!cc->exited) uv_process_kill(&cc->process, SIGKILL);
    });
  }
  // The exit callback (and the stderr drain) close everything once it has gone.
}

bool SshLink::ended() const { return child_->ended(); }

std::string SshLink::failure() const { return child_->failure(); }

void SshLink::whenEnded(uint64_t grace_ms, std::function<void(std::string failure)> done) {
  Child* c = child_;
  if (c->ended()) return done(c->failure());
  c->on_end = std::move(done);
  if (!c->exited) {
    c->startTimer(grace_ms, [](uv_timer_t* t) {
      auto* cc = static_cast<Child*>(t->data);
      if (!cc->exited) uv_process_kill(&cc->process, SIGKILL);
    });
  }
}

}  // namespace vmmd::daemon
