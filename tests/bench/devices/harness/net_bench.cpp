// virtio-net rows: frames sent by the guest (1514-byte frames and 64 KiB TSO frames) through the
// device model onto a real tap in a private network namespace, against plain write() of the same
// frames on the same tap. A packet socket on the tap's interface drains the other side.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "tests/bench/devices/harness/bench.h"
#include "tests/vmm/devices/virtio/harness_transport.h"
#include "tests/vmm/devices/virtio/tap_network.h"
#include "vmm/backends/tap_backend.h"
#include "vmm/devices/virtio/net.h"

namespace vmmd::bench {
namespace {

using virtio::testing::DriverHarness;
using virtio::testing::HarnessTransport;
namespace vt = virtio::testing;

constexpr uint16_t kQueueSize = 256;
constexpr uint16_t kTx = 1;
constexpr uint16_t kChains = kQueueSize / 2;  // offered per kick

// Reads and discards every frame of `ethertype` on the interface until stopped.
class Drain {
 public:
  Drain(const std::string& interface, uint16_t ethertype) {
    auto socket = vt::openPacketSocket(interface, ethertype);
    if (!socket) return;
    fd_ = std::move(*socket);
    int size = 8 << 20;
    (void)::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    thread_ = std::thread([this] {
      std::vector<uint8_t> frame(70000);
      while (!stop_) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) == 1) (void)::recv(fd_.get(), frame.data(), frame.size(), MSG_DONTWAIT);
      }
    });
  }
  ~Drain() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// `bytes`: the vnet header followed by the frame, in one descriptor: the layout a Linux guest
// uses when the header fits in the packet's headroom (VIRTIO_F_VERSION_1 implies ANY_LAYOUT).
Figure throughDevice(HarnessTransport& transport, GuestMemory& memory, const std::vector<uint8_t>& bytes, double seconds) {
  DriverHarness& driver = transport.driver(kTx);
  uint64_t frame = DriverHarness::kData;
  (void)memory.write(frame, bytes);
  for (uint16_t chain = 0; chain < kChains; ++chain) {
    driver.setDescriptor(chain, {frame, static_cast<uint32_t>(bytes.size()), 0, 0});
  }
  uint64_t sent = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while ((elapsed = since(start)) < seconds && !transport.broken()) {
    uint16_t before = driver.usedIndex();
    for (uint16_t chain = 0; chain < kChains; ++chain) driver.offer(chain);
    transport.kick(kTx);
    sent += static_cast<uint16_t>(driver.usedIndex() - before);
  }
  Figure figure;
  figure.operations_per_second = sent / elapsed;
  figure.mib_per_second = figure.operations_per_second * (bytes.size() - vt::kVnetHeaderBytes) / (1 << 20);
  return figure;
}

Figure direct(int tap, const std::vector<uint8_t>& bytes, double seconds) {
  uint64_t sent = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while ((elapsed = since(start)) < seconds) {
    for (int i = 0; i < kChains; ++i) {
      if (::write(tap, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size())) ++sent;
    }
  }
  Figure figure;
  figure.operations_per_second = sent / elapsed;
  figure.mib_per_second = figure.operations_per_second * (bytes.size() - vt::kVnetHeaderBytes) / (1 << 20);
  return figure;
}

}  // namespace

std::vector<Row> netRows(const Options& options) {
  std::vector<Row> rows;
  auto fail_all = [&](const std::string& why) {
    rows.push_back({"net", "frames/s", {}, {}, why});
    return rows;
  };
  if (auto st = vt::enterFreshNetworkNamespace(); !st) return fail_all(st.error().message());
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return fail_all("uv_loop_init");
  {
    auto tap = net::Tap::open("");
    if (!tap) return fail_all(tap.error().message());
    std::string name = tap->name();
    if (auto st = vt::setInterfaceUp(name); !st) return fail_all(st.error().message());
    auto backend = TapBackend::create(&loop, std::move(*tap));
    if (!backend) return fail_all(backend.error().message());
    int tap_fd = (*backend)->fd();
    virtio::VirtioNet net(std::move(*backend), {0x52, 0x54, 0, 0x12, 0x34, 0x56});
    auto memory = GuestMemory::create(HarnessTransport::memoryFor(2));
    if (!memory) return fail_all(memory.error().message());
    HarnessTransport transport(*memory, net, kQueueSize, virtio::kFeatureVersion1 | net.deviceFeatures());
    if (auto st = transport.start(); !st) return fail_all(st.error().message());

    std::vector<uint8_t> small(vt::kVnetHeaderBytes, 0);
    auto frame = vt::ethernetFrame(1514, vt::kExperimentalEthertype, 0);
    small.insert(small.end(), frame.begin(), frame.end());
    struct Case {
      std::string what;
      std::vector<uint8_t> bytes;
      uint16_t ethertype;
    };
    for (const Case& c : {Case{"net tx 1514 B frames", small, vt::kExperimentalEthertype},
                          Case{"net tx 64 KiB TSO frames", vt::tsoFrame(65535 - 40), 0x0800}}) {
      Row row{c.what, "frames/s", {}, {}, {}};
      if (!wanted(options, row.what)) continue;
      Drain drain(name, c.ethertype);
      double seconds = options.seconds / options.rounds;
      for (unsigned i = 0; i < options.rounds; ++i) {
        row.device.addRound(throughDevice(transport, *memory, c.bytes, seconds), options.rounds);
        if (!options.device_only) row.physical.addRound(direct(tap_fd, c.bytes, seconds), options.rounds);
      }
      if (transport.broken()) row.error = transport.failures().front();
      rows.push_back(row);
    }
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  return rows;
}

}  // namespace vmmd::bench
