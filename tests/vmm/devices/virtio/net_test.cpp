// virtio-net driven through the driver harness on a real tap device in a private network
// namespace: frames the guest sends are caught on the tap's interface by a packet socket, frames
// sent there land in the guest's receive buffers. Needs root and /dev/net/tun (skips otherwise).
#include "vmm/devices/virtio/net.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <uv.h>

#include <algorithm>
#include <map>

#include "tests/vmm/devices/virtio/harness_transport.h"
#include "tests/vmm/devices/virtio/hostile_chains.h"
#include "tests/vmm/devices/virtio/tap_network.h"
#include "vmm/backends/tap_backend.h"

namespace vmmd::virtio {
namespace {

using testing::DriverHarness;
using testing::HarnessTransport;
using testing::kExperimentalEthertype;
using testing::kVnetHeaderBytes;

constexpr uint16_t kQueueSize = 16;
constexpr uint16_t kRx = 0, kTx = 1;
constexpr uint64_t D = DriverHarness::kData;
constexpr uint64_t kRam = HarnessTransport::memoryFor(2);
constexpr uint64_t kMrgRxbuf = 1ull << 15;
constexpr uint64_t kGuardBytes = 8 << 20;
constexpr int kPatienceMs = 10000;  // a guard against hanging, not a measurement

class NetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto st = testing::enterFreshNetworkNamespace(); !st) GTEST_SKIP() << "no private network: " << st.error().message();
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_ready_ = true;
    auto tap = net::Tap::open("");
    ASSERT_TRUE(tap.ok()) << tap.error().message();
    tap_name_ = tap->name();
    ASSERT_TRUE(testing::setInterfaceUp(tap_name_).ok());
    auto backend = TapBackend::create(&loop_, std::move(*tap));
    ASSERT_TRUE(backend.ok()) << backend.error().message();
    backend_ = backend->get();
    net_ = std::make_unique<VirtioNet>(std::move(*backend), std::array<uint8_t, 6>{0x52, 0x54, 0, 0x12, 0x34, 0x56});
    auto memory = GuestMemory::create(kRam);
    ASSERT_TRUE(memory.ok());
    memory_.emplace(std::move(*memory));
    std::fill_n(memory_->hostAddress(D, kGuardBytes), kGuardBytes, 0xCC);
  }
  void TearDown() override {
    transport_.reset();
    net_.reset();
    if (loop_ready_) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      uv_loop_close(&loop_);
    }
  }
  void start(bool mergeable) {
    uint64_t features = kFeatureVersion1 | (net_->deviceFeatures() & ~(mergeable ? 0 : kMrgRxbuf));
    transport_ = std::make_unique<HarnessTransport>(*memory_, *net_, kQueueSize, features);
    ASSERT_TRUE(transport_->start().ok());
  }

  // The next frame of `ethertype` the host side sees arriving from the guest.
  std::vector<uint8_t> hostReceives(uint16_t ethertype, size_t max = 70000) {
    const UniqueFd& socket = packetSocket(ethertype);
    std::vector<uint8_t> frame(max);
    pollfd p{socket.get(), POLLIN, 0};
    if (::poll(&p, 1, kPatienceMs) != 1) return {};
    ssize_t n = ::recv(socket.get(), frame.data(), frame.size(), 0);
    frame.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return frame;
  }
  // Packet sockets are opened before the guest sends, so they see the frame.
  const UniqueFd& packetSocket(uint16_t ethertype) {
    auto& socket = sockets_[ethertype];
    if (!socket) {
      auto opened = testing::openPacketSocket(tap_name_, ethertype);
      EXPECT_TRUE(opened.ok()) << opened.error().message();
      if (opened.ok()) socket = std::move(*opened);
    }
    return socket;
  }
  void hostSends(const std::vector<uint8_t>& frame) {
    ASSERT_EQ(::send(packetSocket(kExperimentalEthertype).get(), frame.data(), frame.size(), 0),
              static_cast<ssize_t>(frame.size()));
  }
  // Guest transmit: a zero vnet header then `frame`, as the given descriptor pieces.
  void guestSends(const std::vector<uint8_t>& frame, size_t pieces = 1) {
    std::vector<uint8_t> bytes(kVnetHeaderBytes, 0);
    bytes.insert(bytes.end(), frame.begin(), frame.end());
    guestSendsRaw(bytes, pieces);
  }
  void guestSendsRaw(const std::vector<uint8_t>& bytes, size_t pieces = 1) {
    uint64_t at = D + 0x100000;
    std::memcpy(memory_->hostAddress(at, bytes.size()), bytes.data(), bytes.size());
    std::vector<DriverHarness::Segment> chain;
    size_t piece = (bytes.size() + pieces - 1) / pieces;
    for (size_t done = 0; done < bytes.size(); done += piece) {
      chain.push_back({at + done, static_cast<uint32_t>(std::min(piece, bytes.size() - done)), false});
    }
    transport_->driver(kTx).offerChain(chain);
    transport_->kick(kTx);
  }
  // Runs the loop until the receive queue's used index reaches `target`.
  // Runs the loop until the receive queue's used index reaches `target`, the device breaks, or
  // (a guard against hanging, not a measurement) kPatienceMs pass.
  void waitForReceived(uint16_t target) {
    uv_timer_t guard;
    bool expired = false;
    uv_timer_init(&loop_, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, kPatienceMs, 0);
    while (transport_->driver(kRx).usedIndex() != target && !transport_->broken() && !expired) uv_run(&loop_, UV_RUN_ONCE);
    EXPECT_FALSE(expired) << "nothing arrived within " << kPatienceMs << " ms";
    uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
  }
  uint8_t* at(uint64_t address, uint64_t length = 1) { return memory_->hostAddress(address, length); }
  bool filledWith(uint64_t address, size_t length, uint8_t value) {
    return std::all_of(at(address, length), at(address, length) + length, [value](uint8_t b) { return b == value; });
  }
  uint16_t numBuffers(const uint8_t* header) {
    uint16_t n;
    std::memcpy(&n, header + 10, 2);
    return n;
  }

  uv_loop_t loop_{};
  bool loop_ready_ = false;
  std::string tap_name_;
  NetBackend* backend_ = nullptr;
  std::unique_ptr<VirtioNet> net_;
  std::optional<GuestMemory> memory_;
  std::unique_ptr<HarnessTransport> transport_;
  std::map<uint16_t, UniqueFd> sockets_;
};

TEST_F(NetTest, TransmittedFrameReachesTheTap) {
  start(true);
  auto frame = testing::ethernetFrame(200, kExperimentalEthertype, 7);
  packetSocket(kExperimentalEthertype);
  guestSends(frame);
  ASSERT_EQ(transport_->driver(kTx).usedIndex(), 1);
  EXPECT_EQ(transport_->driver(kTx).usedElement(0).second, 0u);
  EXPECT_EQ(transport_->interrupts(kTx), 1u);
  EXPECT_EQ(hostReceives(kExperimentalEthertype), frame);
}

TEST_F(NetTest, FrameSplitOverManyDescriptorsArrivesWhole) {
  start(true);
  auto frame = testing::ethernetFrame(1514, kExperimentalEthertype, 99);
  packetSocket(kExperimentalEthertype);
  guestSends(frame, 7);  // the header itself is cut in two
  EXPECT_EQ(hostReceives(kExperimentalEthertype), frame);
}

TEST_F(NetTest, TsoFrameOf64KiBReachesTheTapWhole) {
  start(true);
  auto bytes = testing::tsoFrame(65535 - 40);
  packetSocket(0x0800);
  guestSendsRaw(bytes, 3);
  auto received = hostReceives(0x0800);
  ASSERT_EQ(received.size(), bytes.size() - kVnetHeaderBytes);
  // The kernel fills in the TCP checksum; everything else is as sent.
  EXPECT_TRUE(std::equal(received.begin(), received.begin() + 14 + 20 + 16, bytes.begin() + kVnetHeaderBytes));
  EXPECT_TRUE(std::equal(received.begin() + 14 + 40, received.end(), bytes.begin() + kVnetHeaderBytes + 14 + 40));
}

TEST_F(NetTest, ReceivedFrameLandsAfterItsHeader) {
  start(false);
  transport_->driver(kRx).offerChain({{D, 12 + 1514, true}});
  transport_->kick(kRx);
  auto frame = testing::ethernetFrame(300, kExperimentalEthertype, 3);
  hostSends(frame);
  waitForReceived(1);
  ASSERT_FALSE(transport_->broken());
  EXPECT_EQ(transport_->driver(kRx).usedElement(0).second, kVnetHeaderBytes + frame.size());
  EXPECT_EQ(at(D)[0], 0);  // flags
  EXPECT_EQ(at(D)[1], 0);  // gso_type NONE
  EXPECT_EQ(numBuffers(at(D)), 1);
  EXPECT_TRUE(std::equal(frame.begin(), frame.end(), at(D + kVnetHeaderBytes, frame.size())));
  EXPECT_TRUE(filledWith(D + kVnetHeaderBytes + frame.size(), 1514 - frame.size(), 0xCC));
  EXPECT_GE(transport_->interrupts(kRx), 1u);
}

TEST_F(NetTest, MergeableBuffersCarryOneFrameOverSeveralChains) {
  start(true);
  for (uint64_t i = 0; i < 6; ++i) transport_->driver(kRx).offerChain({{D + i * 0x1000, 512, true}});
  transport_->kick(kRx);
  auto frame = testing::ethernetFrame(1400, kExperimentalEthertype, 11);
  hostSends(frame);
  waitForReceived(3);
  ASSERT_FALSE(transport_->broken());
  EXPECT_EQ(numBuffers(at(D)), 3);
  EXPECT_EQ(transport_->driver(kRx).usedElement(0).second, 512u);
  EXPECT_EQ(transport_->driver(kRx).usedElement(1).second, 512u);
  EXPECT_EQ(transport_->driver(kRx).usedElement(2).second, kVnetHeaderBytes + 1400 - 1024);
  std::vector<uint8_t> landed;
  for (uint64_t i = 0; i < 3; ++i) landed.insert(landed.end(), at(D + i * 0x1000), at(D + i * 0x1000) + 512);
  landed.resize(kVnetHeaderBytes + frame.size());
  EXPECT_TRUE(std::equal(frame.begin(), frame.end(), landed.begin() + kVnetHeaderBytes));
  EXPECT_TRUE(filledWith(D + 3 * 0x1000, 512, 0xCC));  // the fourth chain was not used
}

TEST_F(NetTest, HeaderSplitOverTwoBuffersGetsNumBuffersInItsOwnPlace) {
  // The spec lets a driver lay the header over several descriptors: num_buffers belongs at
  // byte 10 of the received bytes, wherever that lands, never in the frame.
  start(true);
  transport_->driver(kRx).offerChain({{D, 8, true}, {D + 0x1000, 2048, true}});
  transport_->kick(kRx);
  auto frame = testing::ethernetFrame(300, kExperimentalEthertype, 5);
  hostSends(frame);
  waitForReceived(1);
  uint16_t num_buffers;
  std::memcpy(&num_buffers, at(D + 0x1000 + 2, 2), 2);
  EXPECT_EQ(num_buffers, 1);
  EXPECT_TRUE(std::equal(frame.begin(), frame.end(), at(D + 0x1000 + 4, frame.size())));
}

TEST_F(NetTest, FrameWaitsForTheGuestToPostBuffers) {
  start(true);
  auto frame = testing::ethernetFrame(100, kExperimentalEthertype, 1);
  hostSends(frame);
  uv_run(&loop_, UV_RUN_NOWAIT);  // the tap is readable, but there is nowhere to put the frame
  EXPECT_EQ(transport_->driver(kRx).usedIndex(), 0);
  transport_->driver(kRx).offerChain({{D, 2048, true}});
  transport_->kick(kRx);
  waitForReceived(1);
  EXPECT_TRUE(std::equal(frame.begin(), frame.end(), at(D + kVnetHeaderBytes, frame.size())));
}

TEST_F(NetTest, FrameLargerThanThePostedBuffersWaitsForMore) {
  // One 512-byte buffer for a 1412-byte frame: the device must wait (not spin) until the guest
  // posts enough, then deliver the frame over all of them.
  start(true);
  transport_->driver(kRx).offerChain({{D, 512, true}});
  transport_->kick(kRx);
  auto frame = testing::ethernetFrame(1400, kExperimentalEthertype, 9);
  hostSends(frame);
  for (int i = 0; i < 3; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(transport_->driver(kRx).usedIndex(), 0);
  transport_->driver(kRx).offerChain({{D + 0x1000, 512, true}});
  transport_->driver(kRx).offerChain({{D + 0x2000, 512, true}});
  transport_->kick(kRx);
  waitForReceived(3);
  EXPECT_EQ(numBuffers(at(D)), 3);
  EXPECT_TRUE(std::equal(frame.begin(), frame.begin() + 500, at(D + kVnetHeaderBytes, 500)));
  EXPECT_TRUE(std::equal(frame.begin() + 1012, frame.end(), at(D + 0x2000, 388)));
}

TEST_F(NetTest, LinkDownDropsTransmittedFrames) {
  start(true);
  packetSocket(kExperimentalEthertype);
  net_->setLink(false);
  EXPECT_EQ(transport_->configChanges(), 1u);
  uint8_t status[2];
  net_->readConfig(6, status);
  EXPECT_EQ(status[0], 0);
  guestSends(testing::ethernetFrame(100, kExperimentalEthertype, 1));
  EXPECT_EQ(transport_->driver(kTx).usedIndex(), 1);  // taken, and dropped
  net_->setLink(true);
  auto second = testing::ethernetFrame(100, kExperimentalEthertype, 2);
  guestSends(second);
  EXPECT_EQ(hostReceives(kExperimentalEthertype), second);  // the first never arrived
}

TEST_F(NetTest, TransmitBufferTheDeviceMayOnlyWriteIsNotSentNorWritten) {
  start(true);
  transport_->driver(kTx).offerChain({{D, 100, true}});
  transport_->kick(kTx);
  EXPECT_FALSE(transport_->broken());
  EXPECT_EQ(transport_->driver(kTx).usedIndex(), 1);
  EXPECT_TRUE(filledWith(D, 100, 0xCC));
}

class NetReadOnlyReceiveBufferTest : public NetTest, public ::testing::WithParamInterface<bool> {};

TEST_P(NetReadOnlyReceiveBufferTest, StaysUntouched) {
  start(/*mergeable=*/GetParam());
  transport_->driver(kRx).offerChain({{D, 2048, false}});
  transport_->kick(kRx);
  hostSends(testing::ethernetFrame(100, kExperimentalEthertype, 1));
  for (int i = 0; i < 3; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  transport_->kick(kRx);
  EXPECT_FALSE(transport_->broken());
  EXPECT_TRUE(filledWith(D, 2048, 0xCC));
}

INSTANTIATE_TEST_SUITE_P(Mergeable, NetReadOnlyReceiveBufferTest, ::testing::Bool());

class NetHostileChainTest : public NetTest, public ::testing::WithParamInterface<std::pair<uint16_t, testing::HostileChain>> {};

TEST_P(NetHostileChainTest, BreaksTheDeviceWithoutWriting) {
  start(true);
  auto [queue, chain] = GetParam();
  if (queue == kRx) hostSends(testing::ethernetFrame(100, kExperimentalEthertype, 1));  // something to receive
  testing::offerHostile(transport_->driver(queue), chain);
  transport_->kick(queue);
  if (queue == kRx) waitForReceived(1);  // returns once the device broke
  EXPECT_TRUE(transport_->broken()) << chain.name;
  EXPECT_EQ(transport_->driver(queue).usedIndex(), 0);
  EXPECT_TRUE(filledWith(D, 0x8000, 0xCC));
  // Broken means stopped: a frame arriving afterwards is not delivered into the next buffer.
  if (queue == kRx) {
    transport_->driver(kRx).offerChain({{D + 0x10000, 2048, true}});
    hostSends(testing::ethernetFrame(100, kExperimentalEthertype, 2));
    if (backend_->on_readable) backend_->on_readable();  // as if the tap's poll fired
    EXPECT_TRUE(filledWith(D + 0x10000, 2048, 0xCC));
  }
}

std::vector<std::pair<uint16_t, testing::HostileChain>> hostileOnBothQueues() {
  std::vector<std::pair<uint16_t, testing::HostileChain>> out;
  for (uint16_t queue : {kRx, kTx}) {
    for (auto& chain : testing::hostileChains(kQueueSize, kRam)) out.emplace_back(queue, chain);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Hostile, NetHostileChainTest, ::testing::ValuesIn(hostileOnBothQueues()), [](const auto& info) {
  return std::string(info.param.first == kRx ? "rx_" : "tx_") + testing::hostileChainName(info.param.second.name);
});

}  // namespace
}  // namespace vmmd::virtio
