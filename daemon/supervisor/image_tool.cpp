#include "daemon/supervisor/image_tool.h"

#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include "base/unique_fd.h"
#include "base/uv_handle.h"

namespace vmmd::daemon {
namespace {

struct ToolRun {
  uv_process_t process{};
  uv_pipe_t output{};
  std::string text;
  std::string what;
  int64_t status = -1;
  int term_signal = 0;
  int open_handles = 0;
  std::function<void(Status)> done;
  char buffer[4096];

  void handleClosed() {
    if (--open_handles > 0) return;
    std::unique_ptr<ToolRun> self(this);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (status == 0 && term_signal == 0) return done({});
    std::string why = term_signal ? "killed by signal " + std::to_string(term_signal) : "exit status " + std::to_string(status);
    done(Error(what + " failed (" + why + ")" + (text.empty() ? "" : ": " + text)));
  }
};

}  // namespace

void runImageTool(uv_loop_t* loop, const std::string& tool, const std::vector<std::string>& args, const Owner& owner,
                  std::function<void(Status)> done) {
  auto run = std::make_unique<ToolRun>();
  run->done = std::move(done);
  run->what = tool;
  for (const std::string& a : args) run->what += " " + a;
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(tool.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // One pipe for stdout and stderr: the tool's messages in the order it wrote them.
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) < 0) return run->done(Error::fromErrno(run->what));
  UniqueFd read_end(ends[0]), write_end(ends[1]);
  uv_pipe_init(loop, &run->output, 0);
  run->output.data = run.get();
  uv_pipe_open(&run->output, read_end.release());
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = write_end.get();
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = write_end.get();
  uv_process_options_t options{};
  options.file = tool.c_str();
  options.args = argv.data();
  options.stdio = stdio;
  options.stdio_count = 3;
  if (owner.uid != ::getuid() || owner.gid != ::getgid()) {
    // The owner's uid and primary group, no supplementary groups (libuv drops them).
    options.flags = UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    options.uid = owner.uid;
    options.gid = owner.gid;
  }
  options.exit_cb = [](uv_process_t* process, int64_t status, int term_signal) {
    auto* r = static_cast<ToolRun*>(process->data);
    r->status = status;
    r->term_signal = term_signal;
    uv_close(reinterpret_cast<uv_handle_t*>(process), [](uv_handle_t* h) { static_cast<ToolRun*>(h->data)->handleClosed(); });
  };
  run->process.data = run.get();
  run->open_handles = 1;  // the pipe
  int rc = uv_spawn(loop, &run->process, &options);
  write_end.reset();  // the tool's copy is what keeps the pipe open
  if (rc < 0) {
    std::string why = run->what + ": " + uv_strerror(rc);
    auto callback = std::move(run->done);
    ToolRun* raw = run.release();
    raw->done = [callback, why](Status) { callback(Error(why)); };
    // libuv wants even a failed spawn's handle closed.
    raw->open_handles = 2;
    uv_close(reinterpret_cast<uv_handle_t*>(&raw->process), [](uv_handle_t* h) { static_cast<ToolRun*>(h->data)->handleClosed(); });
    uv_close(reinterpret_cast<uv_handle_t*>(&raw->output), [](uv_handle_t* h) { static_cast<ToolRun*>(h->data)->handleClosed(); });
    return;
  }
  ToolRun* raw = run.release();
  raw->open_handles = 2;  // the process and the pipe
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&raw->output),
      readIntoBuffer<ToolRun>,
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* r = static_cast<ToolRun*>(s->data);
        if (n > 0 && r->text.size() < 4096) r->text.append(buf->base, static_cast<size_t>(n));
        if (n < 0) uv_close(reinterpret_cast<uv_handle_t*>(s), [](uv_handle_t* h) { static_cast<ToolRun*>(h->data)->handleClosed(); });
      });
}

}  // namespace vmmd::daemon
