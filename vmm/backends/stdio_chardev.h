// Standard input/output as a chardev. On a terminal, input is raw (the guest gets every key) and
// Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A, as with QEMU's -nographic.
#pragma once

#include <termios.h>

#include <optional>

#include "base/uv_handle.h"
#include "vmm/backends/chardev.h"

namespace vmmd {

class StdioChardev : public Chardev {
 public:
  StdioChardev(std::string id, uv_loop_t* loop, std::function<void()> on_quit);
  ~StdioChardev() override;

  void write(std::span<const uint8_t> bytes) override;
  std::string filename() const override { return "stdio"; }

 private:
  void onReadable();

  UvHandle<uv_poll_t> poll_;
  bool escape_pending_ = false;
  std::function<void()> on_quit_;
  std::optional<termios> saved_termios_;
};

}  // namespace vmmd
