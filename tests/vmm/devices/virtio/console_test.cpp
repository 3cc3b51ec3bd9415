// virtio-console (multiport) driven through the driver harness, its ports backed by real
// Unix-socket chardevs (the worker's SocketPort) with a client connected to each.
#include "vmm/devices/virtio/console.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <map>

#include "base/unique_fd.h"
#include "qmp/unix_socket.h"
#include "tests/storage/test_util.h"
#include "tests/vmm/devices/state_checks.h"
#include "tests/vmm/devices/virtio/harness_transport.h"
#include "tests/vmm/devices/virtio/hostile_chains.h"
#include "vmm/backends/socket_port.h"

namespace vmmd::virtio {
namespace {

using testing::DriverHarness;
using testing::HarnessTransport;

constexpr uint16_t kQueueSize = 16;
constexpr uint32_t kMaxPorts = 2;
constexpr uint16_t kQueues = 2 + 2 * kMaxPorts;
constexpr uint64_t D = DriverHarness::kData;
constexpr uint64_t kRam = HarnessTransport::memoryFor(kQueues);
// Queues: 0/1 port 0 rx/tx, 2/3 control rx/tx, 4/5 port 1 rx/tx.
constexpr uint16_t kConsoleRx = 0, kControlRx = 2, kControlTx = 3, kPortRx = 4, kPortTx = 5;
// Control events (virtio 1.x, 5.3.6.2).
constexpr uint16_t kDeviceReady = 0, kDeviceAdd = 1, kPortReady = 3, kConsolePort = 4, kPortOpen = 6, kPortName = 7;
constexpr uint64_t kGuardBytes = 8 << 20;

struct ControlMessage {
  uint32_t id;
  uint16_t event;
  uint16_t value;
  std::string extra;
  bool operator==(const ControlMessage&) const = default;
};

std::ostream& operator<<(std::ostream& out, const ControlMessage& m) {
  return out << "{id " << m.id << ", event " << m.event << ", value " << m.value << ", '" << m.extra << "'}";
}

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    std::vector<PortSpec> ports;
    for (uint32_t number : {0u, 1u}) {
      config::ChardevConfig chardev;
      chardev.id = "chr" + std::to_string(number);
      chardev.backend = config::ChardevConfig::Backend::Socket;
      chardev.path = dir_ / ("port" + std::to_string(number) + ".sock");
      chardev.server = true;
      chardev.wait = false;
      auto socket_port = SocketPort::listen(&loop_, chardev);
      ASSERT_TRUE(socket_port.ok()) << socket_port.error().message();
      backends_[number] = socket_port->get();
      PortSpec spec;
      spec.id = number == 0 ? "console0" : "agent0";
      spec.name = number == 0 ? "" : "org.vmmd.test.0";
      spec.console = number == 0;
      spec.number = number;
      spec.backend = std::move(*socket_port);
      ports.push_back(std::move(spec));
    }
    console_ = std::make_unique<VirtioConsole>(kMaxPorts, std::move(ports),
                                               [this](const std::string& id, bool open) { guest_open_.emplace_back(id, open); });
    auto memory = GuestMemory::create(kRam);
    ASSERT_TRUE(memory.ok());
    memory_.emplace(std::move(*memory));
    std::fill_n(memory_->hostAddress(D, kGuardBytes), kGuardBytes, 0xCC);
    transport_ = std::make_unique<HarnessTransport>(*memory_, *console_, kQueueSize, kFeatureVersion1 | console_->deviceFeatures());
    ASSERT_TRUE(transport_->start().ok());
  }
  void TearDown() override {
    transport_.reset();
    console_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);  // handle close callbacks
    uv_loop_close(&loop_);
  }

  // Connects a client to port `number`'s socket and lets the chardev accept it.
  UniqueFd connectClient(uint32_t number) {
    auto fd = qmp::connectUnix(dir_ / ("port" + std::to_string(number) + ".sock"));
    EXPECT_TRUE(fd.ok()) << fd.error().message();
    while (fd && !backends_[number]->connected()) uv_run(&loop_, UV_RUN_ONCE);
    return fd ? std::move(*fd) : UniqueFd();
  }

  // Guest -> device control message on the control transmit queue.
  void sendControl(uint32_t id, uint16_t event, uint16_t value) {
    uint64_t at = D + 0x1000 + 16 * (sent_++ % 64);
    std::memcpy(memory_->hostAddress(at, 4), &id, 4);
    std::memcpy(memory_->hostAddress(at + 4, 2), &event, 2);
    std::memcpy(memory_->hostAddress(at + 6, 2), &value, 2);
    transport_->driver(kControlTx).offerChain({{at, 8, false}});
    transport_->kick(kControlTx);
  }
  // Posts `count` 64-byte receive buffers on the control receive queue.
  void postControlBuffers(int count) {
    for (int i = 0; i < count; ++i) {
      uint64_t at = D + 0x10000 + 64 * (posted_++ % 256);
      uint16_t head = transport_->driver(kControlRx).offerChain({{at, 64, true}});
      control_buffers_[head] = at;
    }
    transport_->kick(kControlRx);
  }
  // The control messages the device returned since the last call.
  std::vector<ControlMessage> receivedControl() {
    std::vector<ControlMessage> out;
    DriverHarness& driver = transport_->driver(kControlRx);
    for (; control_seen_ != driver.usedIndex(); ++control_seen_) {
      auto [head, length] = driver.usedElement(control_seen_);
      const uint8_t* m = memory_->hostAddress(control_buffers_.at(static_cast<uint16_t>(head)), 64);
      ControlMessage message{};
      if (length < 8) {
        ADD_FAILURE() << "control message of " << length << " bytes";
        continue;
      }
      std::memcpy(&message.id, m, 4);
      std::memcpy(&message.event, m + 4, 2);
      std::memcpy(&message.value, m + 6, 2);
      message.extra.assign(reinterpret_cast<const char*>(m + 8), length - 8);
      out.push_back(message);
    }
    return out;
  }
  // DEVICE_READY, PORT_READY for both ports and the guest opening port 1: a driver's start-up.
  void handshake() {
    postControlBuffers(16);
    sendControl(0, kDeviceReady, 1);
    sendControl(0, kPortReady, 1);
    sendControl(1, kPortReady, 1);
    sendControl(1, kPortOpen, 1);
    (void)receivedControl();
  }
  bool filledWith(uint64_t address, size_t length, uint8_t value) {
    const uint8_t* p = memory_->hostAddress(address, length);
    return std::all_of(p, p + length, [value](uint8_t b) { return b == value; });
  }

  storage::test::ScratchDir dir_;
  uv_loop_t loop_{};
  std::map<uint32_t, SocketPort*> backends_;
  std::unique_ptr<VirtioConsole> console_;
  std::optional<GuestMemory> memory_;
  std::unique_ptr<HarnessTransport> transport_;
  std::vector<std::pair<std::string, bool>> guest_open_;
  std::map<uint16_t, uint64_t> control_buffers_;
  uint16_t control_seen_ = 0;
  unsigned sent_ = 0, posted_ = 0;
};

TEST_F(ConsoleTest, ControlHandshakeAnnouncesPortsNamesAndHostConnections) {
  UniqueFd client = connectClient(1);  // port 1 has a host peer, port 0 not
  postControlBuffers(8);
  sendControl(0, kDeviceReady, 1);
  EXPECT_EQ(receivedControl(), (std::vector<ControlMessage>{{0, kDeviceAdd, 1, ""}, {1, kDeviceAdd, 1, ""}}));
  sendControl(0, kPortReady, 1);
  EXPECT_EQ(receivedControl(), (std::vector<ControlMessage>{{0, kConsolePort, 1, ""}}));
  sendControl(1, kPortReady, 1);
  EXPECT_EQ(receivedControl(),
            (std::vector<ControlMessage>{{1, kPortName, 1, "org.vmmd.test.0"}, {1, kPortOpen, 1, ""}}));
  EXPECT_EQ(transport_->driver(kControlTx).usedIndex(), 3);  // every control message given back
  EXPECT_FALSE(transport_->broken());
}

TEST_F(ConsoleTest, ControlMessagesWaitForReceiveBuffers) {
  sendControl(0, kDeviceReady, 1);  // no buffer posted yet: the answers are kept
  EXPECT_TRUE(receivedControl().empty());
  postControlBuffers(1);
  EXPECT_EQ(receivedControl(), (std::vector<ControlMessage>{{0, kDeviceAdd, 1, ""}}));
  postControlBuffers(1);
  EXPECT_EQ(receivedControl(), (std::vector<ControlMessage>{{1, kDeviceAdd, 1, ""}}));
}

TEST_F(ConsoleTest, GuestOpenAndCloseAreReported) {
  handshake();
  EXPECT_EQ(guest_open_, (std::vector<std::pair<std::string, bool>>{{"agent0", true}}));
  sendControl(1, kPortOpen, 0);
  EXPECT_EQ(guest_open_.back(), std::make_pair(std::string("agent0"), false));
}

TEST_F(ConsoleTest, HostConnectAndDisconnectReachTheGuest) {
  handshake();
  UniqueFd client = connectClient(1);
  EXPECT_EQ(receivedControl(), (std::vector<ControlMessage>{{1, kPortOpen, 1, ""}}));
  client.reset();
  while (backends_[1]->connected()) uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(receivedControl(), (std::vector<ControlMessage>{{1, kPortOpen, 0, ""}}));
}

TEST_F(ConsoleTest, GuestDataReachesTheSocket) {
  UniqueFd client = connectClient(1);
  handshake();
  std::memcpy(memory_->hostAddress(D + 0x20000, 6), "hello ", 6);
  std::memcpy(memory_->hostAddress(D + 0x21000, 5), "world", 5);
  transport_->driver(kPortTx).offerChain({{D + 0x20000, 6, false}, {D + 0x21000, 5, false}});
  transport_->kick(kPortTx);
  ASSERT_EQ(transport_->driver(kPortTx).usedIndex(), 1);
  EXPECT_EQ(transport_->driver(kPortTx).usedElement(0).second, 0u);
  char got[32] = {};
  size_t total = 0;
  while (total < 11) {
    ssize_t n = ::read(client.get(), got + total, sizeof got - total);
    ASSERT_GT(n, 0);
    total += static_cast<size_t>(n);
  }
  EXPECT_EQ(std::string(got, total), "hello world");
}

TEST_F(ConsoleTest, HostDataWaitsForTheGuestToOpenThenLandsInItsBuffers) {
  UniqueFd client = connectClient(1);
  postControlBuffers(16);
  sendControl(0, kDeviceReady, 1);
  sendControl(1, kPortReady, 1);
  ASSERT_EQ(::write(client.get(), "ping from the host", 18), 18);
  while (backends_[1]->available() < 18) uv_run(&loop_, UV_RUN_NOWAIT);
  transport_->driver(kPortRx).offerChain({{D + 0x30000, 8, true}, {D + 0x31000, 64, true}});
  transport_->kick(kPortRx);
  EXPECT_EQ(transport_->driver(kPortRx).usedIndex(), 0);  // the port is not open in the guest yet
  sendControl(1, kPortOpen, 1);
  ASSERT_EQ(transport_->driver(kPortRx).usedIndex(), 1);
  EXPECT_EQ(transport_->driver(kPortRx).usedElement(0).second, 18u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(memory_->hostAddress(D + 0x30000, 8)), 8), "ping fro");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(memory_->hostAddress(D + 0x31000, 10)), 10), "m the host");
  EXPECT_TRUE(filledWith(D + 0x31000 + 10, 54, 0xCC));
}

TEST_F(ConsoleTest, HostDataArrivingLaterIsDeliveredByTheLoop) {
  UniqueFd client = connectClient(1);
  handshake();
  transport_->driver(kPortRx).offerChain({{D + 0x30000, 64, true}});
  transport_->kick(kPortRx);
  ASSERT_EQ(::write(client.get(), "late", 4), 4);
  while (transport_->driver(kPortRx).usedIndex() == 0) uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(transport_->driver(kPortRx).usedElement(0).second, 4u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(memory_->hostAddress(D + 0x30000, 4)), 4), "late");
  EXPECT_GE(transport_->interrupts(kPortRx), 1u);
}

TEST_F(ConsoleTest, ShortControlMessageIsIgnored) {
  postControlBuffers(4);
  std::memset(memory_->hostAddress(D + 0x1000, 4), 0, 4);
  transport_->driver(kControlTx).offerChain({{D + 0x1000, 4, false}});
  transport_->kick(kControlTx);
  EXPECT_FALSE(transport_->broken());
  EXPECT_EQ(transport_->driver(kControlTx).usedIndex(), 1);
  EXPECT_TRUE(receivedControl().empty());
}

TEST_F(ConsoleTest, ControlMessageForAnUnknownPortIsIgnored) {
  postControlBuffers(4);
  sendControl(0, kDeviceReady, 1);
  (void)receivedControl();
  sendControl(7, kPortReady, 1);
  sendControl(7, kPortOpen, 1);
  EXPECT_TRUE(receivedControl().empty());
  EXPECT_TRUE(guest_open_.empty());
  EXPECT_FALSE(transport_->broken());
}

TEST_F(ConsoleTest, ReceiveBufferTheDeviceMayNotWriteStaysUntouched) {
  UniqueFd client = connectClient(1);
  handshake();
  transport_->driver(kPortRx).offerChain({{D + 0x30000, 64, false}});
  ASSERT_EQ(::write(client.get(), "data", 4), 4);
  while (backends_[1]->available() < 4) uv_run(&loop_, UV_RUN_NOWAIT);
  transport_->kick(kPortRx);
  EXPECT_FALSE(transport_->broken());
  EXPECT_TRUE(filledWith(D + 0x30000, 64, 0xCC));
  if (transport_->driver(kPortRx).usedIndex() > 0) {
    EXPECT_EQ(transport_->driver(kPortRx).usedElement(0).second, 0u);
  }
}

TEST_F(ConsoleTest, TransmitBufferTheDeviceShouldReadSendsNothing) {
  UniqueFd client = connectClient(1);
  handshake();
  transport_->driver(kPortTx).offerChain({{D + 0x20000, 16, true}});  // writable: nothing to send
  transport_->kick(kPortTx);
  EXPECT_FALSE(transport_->broken());
  EXPECT_EQ(transport_->driver(kPortTx).usedIndex(), 1);
  EXPECT_TRUE(filledWith(D + 0x20000, 16, 0xCC));
  EXPECT_EQ(backends_[1]->available(), 0u);
}

TEST_F(ConsoleTest, QueueOfAPortWithoutHostEndIsDrained) {
  handshake();
  transport_->driver(kConsoleRx + 1).offerChain({{D + 0x20000, 16, false}});  // port 0 tx: no client connected
  transport_->kick(kConsoleRx + 1);
  EXPECT_EQ(transport_->driver(kConsoleRx + 1).usedIndex(), 1);
  EXPECT_FALSE(transport_->broken());
}

struct HostileOnQueue {
  testing::HostileChain chain;
  uint16_t queue;
};

class ConsoleHostileChainTest : public ConsoleTest, public ::testing::WithParamInterface<HostileOnQueue> {};

TEST_P(ConsoleHostileChainTest, BreaksTheDeviceWithoutWriting) {
  UniqueFd client = connectClient(1);
  handshake();
  ASSERT_EQ(::write(client.get(), "x", 1), 1);  // so the receive queue has something to deliver
  while (backends_[1]->available() < 1) uv_run(&loop_, UV_RUN_NOWAIT);
  const HostileOnQueue& hostile = GetParam();
  uint16_t used_before = transport_->driver(hostile.queue).usedIndex();
  testing::offerHostile(transport_->driver(hostile.queue), hostile.chain);
  transport_->kick(hostile.queue);
  EXPECT_TRUE(transport_->broken()) << hostile.chain.name;
  EXPECT_EQ(transport_->driver(hostile.queue).usedIndex(), used_before);
  EXPECT_TRUE(filledWith(D, 0x1000, 0xCC));
}

std::vector<HostileOnQueue> hostileOnEveryKindOfQueue() {
  std::vector<HostileOnQueue> out;
  for (uint16_t queue : {kControlTx, kPortTx, kPortRx}) {
    for (auto& chain : testing::hostileChains(kQueueSize, kRam)) out.push_back({chain, queue});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Hostile, ConsoleHostileChainTest, ::testing::ValuesIn(hostileOnEveryKindOfQueue()),
                         [](const auto& info) {
                           const char* queue = info.param.queue == kControlTx ? "control_tx"
                                               : info.param.queue == kPortTx  ? "port_tx"
                                                                              : "port_rx";
                           return std::string(queue) + "_" + testing::hostileChainName(info.param.chain.name);
                         });

}  // namespace
}  // namespace vmmd::virtio

namespace vmmd::virtio {
namespace {

// The handshake's outcome is state: a loaded device tells the guest nothing again, except that a
// host end is not connected here while the guest was told it was.
TEST_F(ConsoleTest, StateKeepsTheHandshakeAndTellsOnlyOfAChangedHostEnd) {
  UniqueFd client = connectClient(1);
  handshake();
  auto saved = console_->saveState();
  ASSERT_TRUE(saved.ok()) << saved.error().message();
  {
    auto lock = console_->lock();
    console_->reset();
    ASSERT_TRUE(console_->loadState(*saved).ok());
    console_->activate();
  }
  EXPECT_TRUE(receivedControl().empty()) << "same host end: nothing to tell";
  auto again = console_->saveState();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->bytes, saved->bytes);

  client.reset();  // the "destination" has no peer on port 1
  while (backends_[1]->connected()) uv_run(&loop_, UV_RUN_ONCE);
  (void)receivedControl();
  {
    auto lock = console_->lock();
    console_->reset();
    ASSERT_TRUE(console_->loadState(*saved).ok());
    console_->activate();
  }
  EXPECT_EQ(receivedControl(), (std::vector<ControlMessage>{{1, kPortOpen, 0, ""}}));
  vmmd::testing::expectHostileStatesRefused(*console_, *saved);
}

// Stopped (Machine::stopDeviceIo), a host connection is queued, not written into guest memory,
// until the device runs again.
TEST_F(ConsoleTest, AStoppedDeviceWritesNoControlMessageUntilResumed) {
  handshake();
  {
    auto lock = console_->lock();
    console_->stopIo();
  }
  UniqueFd client = connectClient(1);
  EXPECT_TRUE(receivedControl().empty());
  {
    auto lock = console_->lock();
    console_->resumeIo();
  }
  EXPECT_EQ(receivedControl(), (std::vector<ControlMessage>{{1, kPortOpen, 1, ""}}));
}

}  // namespace
}  // namespace vmmd::virtio
