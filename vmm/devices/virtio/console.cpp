#include "vmm/devices/virtio/console.h"

#include <cstring>

namespace vmmd::virtio {
namespace {

// Control events (virtio 1.x, 5.3.6.2).
constexpr uint16_t kDeviceReady = 0, kDeviceAdd = 1, kPortReady = 3, kConsolePort = 4, kPortOpen = 6, kPortName = 7;
constexpr size_t kMaxPendingControl = 1024;

}  // namespace

struct VirtioConsole::Port {
  PortSpec spec;
  bool guest_ready = false;   // PORT_READY received
  bool guest_open = false;    // the guest has the port open
  bool told_connected = false;  // what the guest was last told of the host end (PORT_OPEN)
  // A guest->host chain being written: the buffers still to send, and the chain's head.
  std::optional<DescriptorChain> sending;
  size_t sending_buffer = 0;
  size_t sending_offset = 0;
  bool waiting_writable = false;
};

VirtioConsole::VirtioConsole(uint32_t max_ports, std::vector<PortSpec> ports,
                             std::function<void(const std::string&, bool)> on_guest_open)
    : max_ports_(max_ports), on_guest_open_(std::move(on_guest_open)) {
  for (auto& spec : ports) {
    auto port = std::make_unique<Port>();
    port->spec = std::move(spec);
    Port* raw = port.get();
    port->spec.backend->on_readable = [this, raw] {
      auto guard = lock();
      receive(*raw);
    };
    port->spec.backend->on_writable = [this, raw] {
      auto guard = lock();
      raw->waiting_writable = false;
      transmit(*raw);
    };
    port->spec.backend->on_connection = [this, raw](bool connected) {
      auto guard = lock();
      // Host connect/disconnect reaches the guest as the port opening or closing.
      if (active_ && raw->guest_ready) tellHostConnection(*raw, connected);
      if (!connected && raw->sending && active_) {
        // What the guest was sending has nowhere to go: hand the buffer back.
        (void)transport_->queue(txQueue(raw->spec.number)).push(raw->sending->head, 0);
        raw->sending.reset();
        raw->waiting_writable = false;
        transport_->signalUsed(txQueue(raw->spec.number));
      }
      if (connected) receive(*raw);
    };
    ports_.push_back(std::move(port));
  }
}

VirtioConsole::~VirtioConsole() {
  for (auto& port : ports_) {
    port->spec.backend->on_readable = nullptr;
    port->spec.backend->on_writable = nullptr;
    port->spec.backend->on_connection = nullptr;
  }
}

void VirtioConsole::readConfig(uint64_t offset, std::span<uint8_t> data) {
  uint8_t config[12] = {};  // cols, rows, max_nr_ports, emerg_wr
  std::memcpy(config + 4, &max_ports_, 4);
  std::fill(data.begin(), data.end(), 0);
  if (offset < sizeof config) std::memcpy(data.data(), config + offset, std::min<size_t>(data.size(), sizeof config - offset));
}


void VirtioConsole::reset() {
  active_ = false;
  driver_ready_ = false;
  control_out_.clear();
  for (auto& port : ports_) {
    port->guest_ready = port->guest_open = port->told_connected = false;
    port->sending.reset();
    port->waiting_writable = false;
    port->spec.backend->waitReadable(false);
  }
}

Result<DeviceState> VirtioConsole::saveState() const {
  auto guard = lock();
  StateWriter out;
  out.boolean(driver_ready_);
  out.u32(static_cast<uint32_t>(ports_.size()));
  for (const auto& port : ports_) {
    if (port->sending) {
      return Error(std::string(name()) + ": port " + port->spec.name + " is sending to its host end, which does not read");
    }
    out.u32(port->spec.number);
    out.boolean(port->guest_ready);
    out.boolean(port->guest_open);
    out.boolean(port->told_connected);
  }
  out.u32(static_cast<uint32_t>(control_out_.size()));
  for (const auto& message : control_out_) out.bytes(message);
  return DeviceState{name(), kStateVersion, out.take()};
}

Status VirtioConsole::loadState(const DeviceState& state) {
  if (auto st = checkState(state, name(), kStateVersion); !st) return st;
  StateReader in(state.bytes);
  bool driver_ready = in.boolean();
  uint32_t count = in.u32();
  if (count != ports_.size()) in.reject(std::to_string(count) + " ports, this device has " + std::to_string(ports_.size()));
  struct Flags {
    bool ready, open, told_connected;
  };
  std::vector<Flags> flags;
  for (const auto& port : ports_) {
    if (in.failed()) break;
    if (uint32_t number = in.u32(); number != port->spec.number) {
      in.reject("port number " + std::to_string(number) + " where " + std::to_string(port->spec.number) + " belongs");
    }
    bool ready = in.boolean();
    bool open = in.boolean();
    flags.push_back({ready, open, in.boolean()});
  }
  uint32_t messages = in.u32();
  if (messages > kMaxPendingControl) in.reject(std::to_string(messages) + " control messages");
  std::deque<std::vector<uint8_t>> control;
  for (uint32_t i = 0; i < messages && !in.failed(); ++i) control.push_back(in.bytes());
  if (auto st = in.finish(name()); !st) return st;
  auto guard = lock();
  driver_ready_ = driver_ready;
  control_out_ = std::move(control);
  for (size_t i = 0; i < ports_.size(); ++i) {
    ports_[i]->guest_ready = flags[i].ready;
    ports_[i]->guest_open = flags[i].open;
    ports_[i]->told_connected = flags[i].told_connected;
  }
  return {};
}

void VirtioConsole::activate() {
  bool restored = driver_ready_;  // a loaded state: the driver did its handshake on the source
  active_ = true;
  if (!restored) return;
  for (auto& port : ports_) {
    if (!port->guest_ready) continue;
    // The host end here may differ from the source's: the guest learns of it as of a (dis)connect.
    if (port->spec.backend->connected() != port->told_connected) tellHostConnection(*port, port->spec.backend->connected());
    receive(*port);
  }
}

void VirtioConsole::tellHostConnection(Port& port, bool connected) {
  port.told_connected = connected;
  sendControl(port.spec.number, kPortOpen, connected ? 1 : 0);
}

void VirtioConsole::hostInputStopped() {
  for (auto& port : ports_) port->spec.backend->waitReadable(false);
}

void VirtioConsole::hostInputResumed() {
  flushControl();
  for (auto& port : ports_) {
    transmit(*port);
    receive(*port);
  }
}

void VirtioConsole::fail(const std::string& why) {
  bool was_active = active_;
  reset();
  if (was_active) transport_->fail(why);
}

VirtioConsole::Port* VirtioConsole::portByQueue(uint16_t queue, bool& is_tx) {
  for (auto& port : ports_) {
    if (rxQueue(port->spec.number) == queue) {
      is_tx = false;
      return port.get();
    }
    if (txQueue(port->spec.number) == queue) {
      is_tx = true;
      return port.get();
    }
  }
  return nullptr;
}

void VirtioConsole::kick(uint16_t queue) {
  if (!active_) return;
  if (queue == kControlTx) {
    handleControl();
    return;
  }
  if (queue == kControlRx) {
    flushControl();
    return;
  }
  bool is_tx = false;
  Port* port = portByQueue(queue, is_tx);
  if (!port) {
    // A queue of a port with no host end: take the guest's data and drop it, as QEMU does.
    Virtqueue& q = transport_->queue(queue);
    if (queue % 2 == 1 || queue == 1) {
      for (uint32_t served = 0;; ++served) {
        if (served == kickBudget(q)) {
          transport_->kickAgain(queue);
          break;
        }
        auto chain = q.pop();
        if (!chain) return fail(chain.error().message());
        if (!chain->has_value()) {
          if (q.enableNotifications()) continue;
          break;
        }
        (void)q.push((*chain)->head, 0);
      }
      transport_->signalUsed(queue);
    }
    return;
  }
  if (is_tx) {
    transmit(*port);
  } else {
    receive(*port);  // the guest posted receive buffers
  }
}

void VirtioConsole::handleControl() {
  Virtqueue& queue = transport_->queue(kControlTx);
  for (uint32_t served = 0;; ++served) {
    if (served == kickBudget(queue)) {
      transport_->kickAgain(kControlTx);
      break;
    }
    auto chain = queue.pop();
    if (!chain) return fail(chain.error().message());
    if (!chain->has_value()) {
      if (queue.enableNotifications()) continue;
      break;
    }
    uint8_t message[8] = {};
    size_t got = 0;
    for (const Buffer& b : (*chain)->readable) {
      size_t n = std::min<size_t>(b.length, sizeof message - got);
      std::memcpy(message + got, b.data, n);
      got += n;
    }
    (void)queue.push((*chain)->head, 0);
    if (got < sizeof message) continue;  // too short to be a control message: ignored
    uint32_t id;
    uint16_t event, value;
    std::memcpy(&id, message, 4);
    std::memcpy(&event, message + 4, 2);
    std::memcpy(&value, message + 6, 2);
    if (event == kDeviceReady && value == 1) {
      driver_ready_ = true;
      for (auto& port : ports_) sendControl(port->spec.number, kDeviceAdd, 1);
    } else if (event == kPortReady) {
      for (auto& port : ports_) {
        if (port->spec.number != id || value != 1) continue;
        port->guest_ready = true;
        if (port->spec.console) sendControl(id, kConsolePort, 1);
        if (!port->spec.name.empty()) sendControl(id, kPortName, 1, port->spec.name);
        if (port->spec.backend->connected()) tellHostConnection(*port, true);
      }
    } else if (event == kPortOpen) {
      for (auto& port : ports_) {
        if (port->spec.number != id) continue;
        port->guest_open = value == 1;
        if (on_guest_open_ && !port->spec.id.empty()) on_guest_open_(port->spec.id, port->guest_open);
        receive(*port);
      }
    }
  }
  transport_->signalUsed(kControlTx);
  flushControl();
}

void VirtioConsole::sendControl(uint32_t id, uint16_t event, uint16_t value, const std::string& extra) {
  if (control_out_.size() >= kMaxPendingControl) return;  // a driver that never reads its control queue
  std::vector<uint8_t> message(8 + extra.size());
  std::memcpy(message.data(), &id, 4);
  std::memcpy(message.data() + 4, &event, 2);
  std::memcpy(message.data() + 6, &value, 2);
  std::memcpy(message.data() + 8, extra.data(), extra.size());
  control_out_.push_back(std::move(message));
  flushControl();
}

void VirtioConsole::flushControl() {
  if (!active_ || ioStopped()) return;  // queued in control_out_ until the device runs again
  Virtqueue& queue = transport_->queue(kControlRx);
  bool pushed = false;
  while (!control_out_.empty()) {
    auto chain = queue.pop();
    if (!chain) return fail(chain.error().message());
    if (!chain->has_value()) break;  // waits for the driver to post buffers (it kicks then)
    const auto& message = control_out_.front();
    size_t done = 0;
    for (const Buffer& b : (*chain)->writable) {
      size_t n = std::min<size_t>(b.length, message.size() - done);
      std::memcpy(b.data, message.data() + done, n);
      done += n;
      if (done == message.size()) break;
    }
    (void)queue.push((*chain)->head, static_cast<uint32_t>(done));
    control_out_.pop_front();
    pushed = true;
  }
  if (pushed) transport_->signalUsed(kControlRx);
}

void VirtioConsole::transmit(Port& port) {
  if (!active_ || port.waiting_writable || ioStopped()) return;
  Virtqueue& queue = transport_->queue(txQueue(port.spec.number));
  bool pushed = false;
  for (uint32_t served = 0;; ++served) {
    if (!port.sending) {
      if (served >= kickBudget(queue)) {
        transport_->kickAgain(txQueue(port.spec.number));
        break;
      }
      auto chain = queue.pop();
      if (!chain) return fail(chain.error().message());
      if (!chain->has_value()) {
        if (queue.enableNotifications()) continue;
        break;
      }
      port.sending = std::move(**chain);
      port.sending_buffer = port.sending_offset = 0;
    }
    DescriptorChain& chain = *port.sending;
    bool host_connected = port.spec.backend->connected();
    while (host_connected && port.sending_buffer < chain.readable.size()) {
      const Buffer& b = chain.readable[port.sending_buffer];
      size_t n = port.spec.backend->tryWrite({b.data + port.sending_offset, b.length - port.sending_offset});
      port.sending_offset += n;
      if (port.sending_offset < b.length) {
        // The peer is not reading: keep the chain, wait until the socket drains.
        port.waiting_writable = true;
        port.spec.backend->waitWritable();
        if (pushed) transport_->signalUsed(txQueue(port.spec.number));
        return;
      }
      ++port.sending_buffer;
      port.sending_offset = 0;
    }
    (void)queue.push(chain.head, 0);  // sent (or dropped: no host end attached)
    port.sending.reset();
    pushed = true;
  }
  if (pushed) transport_->signalUsed(txQueue(port.spec.number));
}

void VirtioConsole::receive(Port& port) {
  // Linux drops data that arrives for a port no guest process has open, so, like QEMU, the
  // host side is only read while the guest has the port open; bytes wait in the socket until then.
  if (!active_ || ioStopped() || !port.guest_open || !port.spec.backend->connected()) {
    port.spec.backend->waitReadable(false);
    return;
  }
  Virtqueue& queue = transport_->queue(rxQueue(port.spec.number));
  bool pushed = false;
  // Pull only what is waiting, only into buffers the guest posted: flow control both ways.
  while (port.spec.backend->available() > 0) {
    auto chain = queue.pop();
    if (!chain) return fail(chain.error().message());
    if (!chain->has_value()) {
      if (queue.enableNotifications()) continue;
      port.spec.backend->waitReadable(false);  // resumes when the guest posts buffers (kick)
      if (pushed) transport_->signalUsed(rxQueue(port.spec.number));
      return;
    }
    uint32_t written = 0;
    for (const Buffer& b : (*chain)->writable) {
      size_t n = port.spec.backend->tryRead({b.data, b.length});
      written += static_cast<uint32_t>(n);
      if (n < b.length) break;
    }
    (void)queue.push((*chain)->head, written);
    pushed = true;
  }
  if (pushed) transport_->signalUsed(rxQueue(port.spec.number));
  port.spec.backend->waitReadable(true);
}

}  // namespace vmmd::virtio
