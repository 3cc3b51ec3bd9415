// virtio-console with multiple ports (virtio 1.x section 5.3), i.e. QEMU's virtio-serial: named
// ports (virtserialport, e.g. org.qemu.guest_agent.0) and console ports (virtconsole), each backed
// by a host stream (a Unix-socket chardev). Flow control is end to end: bytes the guest sends are
// written from guest memory to the socket and the buffer is returned only once written (a peer
// that stops reading stalls the port, nothing piles up in the host); the host socket is read
// only while the guest has receive buffers posted.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vmm/devices/virtio/virtio_device.h"

namespace vmmd::virtio {

// The host end of one port, pulled by the device; all calls and callbacks on the main loop.
class PortBackend {
 public:
  virtual ~PortBackend() = default;
  // Writes what it can at once (0: would block); the rest is retried after `on_writable`.
  virtual size_t tryWrite(std::span<const uint8_t> bytes) = 0;
  // Bytes waiting to be read now.
  virtual size_t available() const = 0;
  // Reads up to out.size() bytes that are waiting (never blocks).
  virtual size_t tryRead(std::span<uint8_t> out) = 0;
  // One `on_writable` / `on_readable` call once the socket can take / give more.
  virtual void waitWritable() = 0;
  virtual void waitReadable(bool wanted) = 0;
  virtual bool connected() const = 0;
  std::function<void()> on_readable;
  std::function<void()> on_writable;
  std::function<void(bool connected)> on_connection;
};

struct PortSpec {
  std::string id;    // -device ...,id= (for VSERPORT_CHANGE)
  std::string name;  // the port's name as the guest sees it (/sys/class/virtio-ports/*/name)
  bool console = false;
  uint32_t number = 0;
  std::unique_ptr<PortBackend> backend;
};

class VirtioConsole : public VirtioDevice {
 public:
  // `on_guest_open(id, open)`: the guest opened or closed a port (QMP VSERPORT_CHANGE).
  VirtioConsole(uint32_t max_ports, std::vector<PortSpec> ports, std::function<void(const std::string&, bool)> on_guest_open);
  ~VirtioConsole() override;

  uint16_t deviceType() const override { return 3; }
  uint32_t pciClass() const override { return 0x078000; }  // communication controller, as QEMU's
  Names names() const override { return {"virtio-serial-pci", "virtio-serial-device"}; }
  uint64_t deviceFeatures() const override { return 1ull << 1; }  // VIRTIO_CONSOLE_F_MULTIPORT
  uint16_t queueCount() const override { return static_cast<uint16_t>(2 + 2 * max_ports_); }
  void readConfig(uint64_t offset, std::span<uint8_t> data) override;
  void activate() override;
  void kick(uint16_t queue) override;
  void reset() override;
  // DEVICE_READY seen, each port's PORT_READY/open flags, the control messages not yet delivered.
  // A port in the middle of sending a guest buffer to its host end (a peer that stopped reading)
  // cannot be saved: the error names it. After a load each ready port is told its host end's
  // connection as it is here.
  Result<DeviceState> saveState() const override;
  Status loadState(const DeviceState& state) override;
  static constexpr uint32_t kStateVersion = 1;

 private:
  struct Port;
  static constexpr uint16_t kControlRx = 2, kControlTx = 3;
  static uint16_t rxQueue(uint32_t port) { return static_cast<uint16_t>(port == 0 ? 0 : 2 + 2 * port); }
  static uint16_t txQueue(uint32_t port) { return static_cast<uint16_t>(port == 0 ? 1 : 3 + 2 * port); }

  void handleControl();
  void sendControl(uint32_t id, uint16_t event, uint16_t value, const std::string& extra = {});
  void flushControl();
  void transmit(Port& port);
  // Moves waiting host bytes into the guest's posted receive buffers.
  void receive(Port& port);
  Port* portByQueue(uint16_t queue, bool& is_tx);
  void fail(const std::string& why);
  void tellHostConnection(Port& port, bool connected);
  void hostInputStopped() override;
  void hostInputResumed() override;

  uint32_t max_ports_;
  std::vector<std::unique_ptr<Port>> ports_;
  std::function<void(const std::string&, bool)> on_guest_open_;
  std::deque<std::vector<uint8_t>> control_out_;  // control messages waiting for guest buffers
  bool driver_ready_ = false;
};

}  // namespace vmmd::virtio
