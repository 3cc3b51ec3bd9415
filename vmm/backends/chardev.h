// Character devices: the host end of a serial port (and, later, of virtio-serial ports).
// Output may be written from any thread (vCPU threads) and never blocks for long; input is
// delivered on the main loop thread to the receiver.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "base/file_opener.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/config/machine_config.h"

namespace vmmd {

class Chardev {
 public:
  using Receiver = std::function<void(std::span<const uint8_t>)>;
  virtual ~Chardev() = default;

  virtual void write(std::span<const uint8_t> bytes) = 0;
  // QEMU's query-chardev "filename", e.g. "unix:/run/x.sock,server=on" or "stdio".
  virtual std::string filename() const = 0;
  // Whether a peer is attached (a socket client), for query-chardev's frontend-open.
  virtual bool connected() const { return true; }

  void setReceiver(Receiver receiver) { receiver_ = std::move(receiver); }
  const std::string& id() const { return id_; }

 protected:
  explicit Chardev(std::string id) : id_(std::move(id)) {}
  void deliver(std::span<const uint8_t> bytes) {
    if (receiver_) receiver_(bytes);
  }

 private:
  std::string id_;
  Receiver receiver_;
};

// The listening socket of a server=on socket chardev (serial, virtio-serial port, QMP monitor):
// the one the parent passed as fd=N, or one bound at path= (qmp::listenUnix: a socket left there
// by a dead process is replaced, any other file refused). Errors start with `owner` ("chardev 'c0'").
Result<UniqueFd> openSocketListener(const std::string& owner, const config::ChardevConfig& config,
                                    int backlog = SOMAXCONN);

// `on_quit` is called when the user types Ctrl-A x on a stdio terminal (QEMU's escape); a file
// chardev's file is opened through `files`.
Result<std::unique_ptr<Chardev>> createChardev(uv_loop_t* loop, const config::ChardevConfig& config,
                                               std::function<void()> on_quit, const FileOpener& files = plainFiles());

}  // namespace vmmd
