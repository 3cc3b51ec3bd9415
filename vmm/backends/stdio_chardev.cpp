#include "vmm/backends/stdio_chardev.h"

#include <unistd.h>

#include <cerrno>
#include <vector>

namespace vmmd {
namespace {

constexpr uint8_t kEscape = 0x01;  // Ctrl-A

void writeAll(int fd, std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stdout gone: the console output is lost, the guest runs on
    done += static_cast<size_t>(n);
  }
}

}  // namespace

StdioChardev::StdioChardev(std::string id, uv_loop_t* loop, std::function<void()> on_quit)
    : Chardev(std::move(id)), on_quit_(std::move(on_quit)) {
  if (::isatty(STDIN_FILENO)) {
    termios attributes{};
    if (::tcgetattr(STDIN_FILENO, &attributes) == 0) {
      saved_termios_ = attributes;
      termios raw = attributes;
      ::cfmakeraw(&raw);
      raw.c_oflag |= OPOST | ONLCR;  // keep "\n" -> "\r\n" for the host terminal
      ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
  }
  // Reading stdin only makes sense when it is something that can be polled (tty, pipe, socket).
  // stdin may be a regular file or /dev/null, which cannot be polled: then there is no input.
  auto poll = std::make_unique<uv_poll_t>();
  if (uv_poll_init(loop, poll.get(), STDIN_FILENO) == 0) {
    poll_.reset(poll.release());
    poll_->data = this;
    uv_poll_start(poll_.get(), UV_READABLE, [](uv_poll_t* handle, int status, int) {
      auto* self = static_cast<StdioChardev*>(handle->data);
      if (status < 0) {
        uv_poll_stop(handle);
        return;
      }
      self->onReadable();
    });
  }
}

StdioChardev::~StdioChardev() {
  if (poll_) uv_poll_stop(poll_.get());
  if (saved_termios_) ::tcsetattr(STDIN_FILENO, TCSANOW, &*saved_termios_);
}

void StdioChardev::write(std::span<const uint8_t> bytes) { writeAll(STDOUT_FILENO, bytes); }

void StdioChardev::onReadable() {
  uint8_t buffer[4096];
  ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
  if (n <= 0) {
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    uv_poll_stop(poll_.get());  // end of input: the guest keeps running without it
    return;
  }
  if (!saved_termios_) {
    deliver({buffer, static_cast<size_t>(n)});
    return;
  }
  std::vector<uint8_t> out;
  for (ssize_t i = 0; i < n; ++i) {
    uint8_t byte = buffer[i];
    if (escape_pending_) {
      escape_pending_ = false;
      if (byte == 'x') {
        if (on_quit_) on_quit_();
        return;
      }
      if (byte == kEscape) out.push_back(kEscape);
      continue;
    }
    if (byte == kEscape) {
      escape_pending_ = true;
      continue;
    }
    out.push_back(byte);
  }
  if (!out.empty()) deliver(out);
}

}  // namespace vmmd
