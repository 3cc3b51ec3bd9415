#include "vmm/backends/chardev.h"

#include <fcntl.h>
#include <unistd.h>

#include "base/unique_fd.h"
#include "qmp/unix_socket.h"
#include "vmm/backends/socket_chardev.h"
#include "vmm/backends/stdio_chardev.h"

namespace vmmd {
namespace {

// file: output appended to a file; no input.
class FileChardev : public Chardev {
 public:
  FileChardev(std::string id, std::string path, UniqueFd fd) : Chardev(std::move(id)), path_(std::move(path)), fd_(std::move(fd)) {}
  void write(std::span<const uint8_t> bytes) override {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd_.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  std::string filename() const override { return "file:" + path_; }

 private:
  std::string path_;
  UniqueFd fd_;
};

class NullChardev : public Chardev {
 public:
  explicit NullChardev(std::string id) : Chardev(std::move(id)) {}
  void write(std::span<const uint8_t>) override {}
  std::string filename() const override { return "null"; }
};

}  // namespace

Result<UniqueFd> openSocketListener(const std::string& owner, const config::ChardevConfig& config, int backlog) {
  auto fd = config.fd >= 0 ? qmp::adoptListeningUnix(config.fd) : qmp::listenUnix(config.path, backlog);
  if (!fd) return fd.error().withContext(owner);
  return fd;
}

Result<std::unique_ptr<Chardev>> createChardev(uv_loop_t* loop, const config::ChardevConfig& config,
                                               std::function<void()> on_quit, const FileOpener& files) {
  using Backend = config::ChardevConfig::Backend;
  switch (config.backend) {
    case Backend::Stdio:
      return std::unique_ptr<Chardev>(std::make_unique<StdioChardev>(config.id, loop, std::move(on_quit)));
    case Backend::Null:
      return std::unique_ptr<Chardev>(std::make_unique<NullChardev>(config.id));
    case Backend::File: {
      auto fd = files.open(config.path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (!fd) return fd.error().withContext("chardev '" + config.id + "'");
      return std::unique_ptr<Chardev>(std::make_unique<FileChardev>(config.id, config.path, std::move(*fd)));
    }
    case Backend::Socket: {
      auto socket = SocketChardev::listen(loop, config);
      if (!socket) return socket.error();
      return std::unique_ptr<Chardev>(std::move(*socket));
    }
  }
  return Error("chardev '" + config.id + "': unknown backend");
}

}  // namespace vmmd
