// virtio-blk driven through the driver harness on real images (a raw file and a qcow2 made by
// qemu-img), with requests served on libuv's thread pool exactly as in the worker.
#include "vmm/devices/virtio/blk.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>

#include "storage/raw.h"
#include "tests/storage/test_util.h"
#include "tests/vmm/devices/state_checks.h"
#include "tests/vmm/devices/virtio/harness_transport.h"
#include "tests/vmm/devices/virtio/hostile_chains.h"
#include "vmm/backends/io_executor.h"

namespace vmmd::virtio {
namespace {

using testing::DriverHarness;
using testing::HarnessTransport;
using Segment = DriverHarness::Segment;

constexpr uint16_t kQueueSize = 16;
constexpr uint64_t D = DriverHarness::kData;
constexpr uint64_t kRam = HarnessTransport::memoryFor(1);
constexpr uint64_t kDiskBytes = 8 << 20;
constexpr uint64_t kSectors = kDiskBytes / 512;
constexpr uint32_t kIn = 0, kOut = 1, kFlush = 4, kGetId = 8, kDiscard = 11, kWriteZeroes = 13;
constexpr uint8_t kOk = 0, kIoErr = 1, kUnsupported = 2;
// Where requests live in guest memory: header, status byte, payload buffers.
constexpr uint64_t kHeader = D, kStatus = D + 0x100, kPayload = D + 0x10000;
constexpr uint64_t kGuardBytes = 4 << 20;

struct Outcome {
  uint32_t used_length;
  uint8_t status;
};

class BlkRig {
 public:
  // Opens `path` and starts a device on it with a fresh queue.
  Status start(const std::string& path, bool read_only, const std::string& serial = "vmmd-blk-test") {
    if (uv_loop_init(&loop_) != 0) return Error("uv_loop_init");
    loop_ready_ = true;
    storage::OpenOptions options;
    options.readOnly = read_only;
    auto disk = storage::openImage(path, options);
    if (!disk) return disk.error();
    blk_ = std::make_unique<VirtioBlk>(std::move(*disk), serial, /*no_flush=*/false, uvIoExecutor(&loop_),
                                       [this](const std::string& operation, const std::string&) { errors.push_back(operation); });
    auto memory = GuestMemory::create(kRam);
    if (!memory) return memory.error();
    memory_.emplace(std::move(*memory));
    std::fill_n(memory_->hostAddress(D, kGuardBytes), kGuardBytes, 0xCC);
    transport_ = std::make_unique<HarnessTransport>(*memory_, *blk_, kQueueSize, kFeatureVersion1 | blk_->deviceFeatures());
    return transport_->start();
  }
  ~BlkRig() { stop(); }
  // Closes the device and its image (so qemu-img may open it).
  void stop() {
    transport_.reset();
    blk_.reset();
    if (loop_ready_) {
      uv_run(&loop_, UV_RUN_DEFAULT);  // completions of requests still queued
      uv_loop_close(&loop_);
      loop_ready_ = false;
    }
  }

  // Offers [header][payload...][status] and waits until the device returns it.
  Outcome request(uint32_t type, uint64_t sector, const std::vector<Segment>& payload) {
    writeHeader(type, sector);
    std::vector<Segment> chain{{kHeader, 16, false}};
    chain.insert(chain.end(), payload.begin(), payload.end());
    chain.push_back({kStatus, 1, true});
    return offerAndWait(chain);
  }
  Outcome offerAndWait(const std::vector<Segment>& chain) {
    *at(kStatus) = 0xCC;
    uint16_t before = driver().usedIndex();
    uint16_t head = driver().offerChain(chain);
    transport_->kick(0);
    if (!waitForUsed(static_cast<uint16_t>(before + 1))) return {~0u, 0xCC};
    auto [id, length] = driver().usedElement(before);
    EXPECT_EQ(id, head);
    return {length, *at(kStatus)};
  }
  // Runs the loop until the used index reaches `target` (false: the device broke or stalled).
  bool waitForUsed(uint16_t target) {
    while (static_cast<int16_t>(driver().usedIndex() - target) < 0) {
      if (transport_->broken()) return false;
      if (uv_run(&loop_, UV_RUN_ONCE) == 0 && static_cast<int16_t>(driver().usedIndex() - target) < 0) return false;
    }
    return true;
  }
  // Runs the loop until nothing is left to complete.
  void drain() { uv_run(&loop_, UV_RUN_DEFAULT); }
  void writeHeader(uint32_t type, uint64_t sector) {
    uint8_t header[16] = {};
    std::memcpy(header, &type, 4);
    std::memcpy(header + 8, &sector, 8);
    (void)memory_->write(kHeader, header);
  }

  DriverHarness& driver() { return transport_->driver(0); }
  HarnessTransport& transport() { return *transport_; }
  VirtioBlk& device() { return *blk_; }
  uint8_t* at(uint64_t address, uint64_t length = 1) { return memory_->hostAddress(address, length); }
  void fill(uint64_t address, size_t length, uint8_t value) { std::fill_n(at(address, length), length, value); }
  bool filledWith(uint64_t address, size_t length, uint8_t value) {
    return std::all_of(at(address, length), at(address, length) + length, [value](uint8_t b) { return b == value; });
  }

  std::vector<std::string> errors;  // operations the device reported as host I/O errors

 private:
  uv_loop_t loop_{};
  bool loop_ready_ = false;
  std::unique_ptr<VirtioBlk> blk_;
  std::optional<GuestMemory> memory_;
  std::unique_ptr<HarnessTransport> transport_;
};

std::string makeImage(const storage::test::ScratchDir& dir, const std::string& format) {
  std::string path = dir / ("disk." + format);
  auto made = storage::test::run("qemu-img create -q -f " + format + " " + path + " " + std::to_string(kDiskBytes));
  EXPECT_EQ(made.status, 0) << made.output;
  return path;
}

// ---- well-formed requests, on raw and on qcow2 ----

class BlkTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    REQUIRE_QEMU_IMG();
    path_ = makeImage(dir_, GetParam());
    ASSERT_TRUE(rig_.start(path_, false).ok());
  }
  // After the device is gone: the image is consistent and holds what the guest wrote.
  void expectImageHolds(uint64_t offset, size_t length, uint8_t value) {
    rig_.stop();
    if (GetParam() == "qcow2") {
      auto check = storage::test::qemuCheck(path_);
      EXPECT_EQ(check.status, 0) << check.output;
    }
    char pattern[8];
    std::snprintf(pattern, sizeof pattern, "0x%02x", value);
    auto read = storage::test::run("qemu-io -f " + GetParam() + " -c 'read -P " + pattern + " " + std::to_string(offset) +
                                   " " + std::to_string(length) + "' " + path_);
    EXPECT_EQ(read.status, 0) << read.output;
    EXPECT_EQ(read.output.find("Pattern verification failed"), std::string::npos) << read.output;
  }

  storage::test::ScratchDir dir_;
  std::string path_;
  BlkRig rig_;
};

TEST_P(BlkTest, WriteThenReadBackAcrossSeveralBuffers) {
  rig_.fill(kPayload, 512, 0x5A);
  rig_.fill(kPayload + 0x1000, 1024, 0x5A);
  Outcome written = rig_.request(kOut, 40, {{kPayload, 512, false}, {kPayload + 0x1000, 1024, false}});
  EXPECT_EQ(written.status, kOk);
  EXPECT_EQ(written.used_length, 1u);  // only the status byte was written
  rig_.fill(kPayload + 0x10000, 3 * 512, 0);
  Outcome read = rig_.request(kIn, 40, {{kPayload + 0x10000, 2048, true}, {kPayload + 0x20000, 512 - 0, true}});
  // 2048 + 512 bytes asked: sectors 40..44, the last two never written (zero).
  EXPECT_EQ(read.status, kOk);
  EXPECT_EQ(read.used_length, 2048u + 512u + 1u);
  EXPECT_TRUE(rig_.filledWith(kPayload + 0x10000, 1536, 0x5A));
  EXPECT_TRUE(rig_.filledWith(kPayload + 0x10000 + 1536, 512, 0));
  EXPECT_TRUE(rig_.filledWith(kPayload + 0x20000, 512, 0));
  EXPECT_TRUE(rig_.filledWith(kPayload + 0x20000 + 512, 0x1000, 0xCC));  // nothing past the buffer
  EXPECT_TRUE(rig_.errors.empty());
  expectImageHolds(40 * 512, 1536, 0x5A);
}

TEST_P(BlkTest, StatusByteIsTheLastByteOfTheLastWritableBuffer) {
  // Data and status share one 513-byte descriptor, as some drivers lay them out.
  rig_.fill(kPayload, 512, 0x77);
  ASSERT_EQ(rig_.request(kOut, 3, {{kPayload, 512, false}}).status, kOk);
  rig_.fill(kPayload + 0x1000, 520, 0xEE);
  rig_.writeHeader(kIn, 3);
  uint16_t before = rig_.driver().usedIndex();
  rig_.driver().offerChain({{kHeader, 16, false}, {kPayload + 0x1000, 513, true}});
  rig_.transport().kick(0);
  ASSERT_TRUE(rig_.waitForUsed(static_cast<uint16_t>(before + 1)));
  EXPECT_EQ(rig_.driver().usedElement(before).second, 513u);
  EXPECT_TRUE(rig_.filledWith(kPayload + 0x1000, 512, 0x77));
  EXPECT_EQ(*rig_.at(kPayload + 0x1000 + 512), kOk);
  EXPECT_TRUE(rig_.filledWith(kPayload + 0x1000 + 513, 7, 0xEE));
}

TEST_P(BlkTest, HeaderSplitOverTwoDescriptors) {
  rig_.writeHeader(kIn, 0);
  Outcome read = rig_.offerAndWait({{kHeader, 8, false}, {kHeader + 8, 8, false}, {kPayload, 512, true}, {kStatus, 1, true}});
  EXPECT_EQ(read.status, kOk);
  EXPECT_EQ(read.used_length, 513u);
}

TEST_P(BlkTest, Flush) {
  Outcome flushed = rig_.request(kFlush, 0, {});
  EXPECT_EQ(flushed.status, kOk);
  EXPECT_EQ(flushed.used_length, 1u);
}

TEST_P(BlkTest, GetIdReturnsTheSerialPaddedToTwentyBytes) {
  rig_.fill(kPayload, 32, 0xCC);
  Outcome id = rig_.request(kGetId, 0, {{kPayload, 20, true}});
  EXPECT_EQ(id.status, kOk);
  EXPECT_EQ(id.used_length, 21u);
  std::string serial(reinterpret_cast<char*>(rig_.at(kPayload, 20)), 20);
  EXPECT_EQ(serial, std::string("vmmd-blk-test") + std::string(7, '\0'));
  EXPECT_TRUE(rig_.filledWith(kPayload + 20, 12, 0xCC));
}

TEST_P(BlkTest, WriteZeroesClearsExactlyItsRange) {
  rig_.fill(kPayload, 8 * 512, 0x3C);
  ASSERT_EQ(rig_.request(kOut, 100, {{kPayload, 8 * 512, false}}).status, kOk);
  uint8_t segment[16] = {};
  uint64_t sector = 102;
  uint32_t sectors = 3;
  std::memcpy(segment, &sector, 8);
  std::memcpy(segment + 8, &sectors, 4);
  std::memcpy(rig_.at(kPayload + 0x8000, 16), segment, 16);
  EXPECT_EQ(rig_.request(kWriteZeroes, 0, {{kPayload + 0x8000, 16, false}}).status, kOk);
  rig_.fill(kPayload + 0x10000, 8 * 512, 0xCC);
  ASSERT_EQ(rig_.request(kIn, 100, {{kPayload + 0x10000, 8 * 512, true}}).status, kOk);
  EXPECT_TRUE(rig_.filledWith(kPayload + 0x10000, 2 * 512, 0x3C));
  EXPECT_TRUE(rig_.filledWith(kPayload + 0x10000 + 2 * 512, 3 * 512, 0));
  EXPECT_TRUE(rig_.filledWith(kPayload + 0x10000 + 5 * 512, 3 * 512, 0x3C));
  expectImageHolds(102 * 512, 3 * 512, 0);
}

TEST_P(BlkTest, DiscardSucceedsAndKeepsTheImageConsistent) {
  rig_.fill(kPayload, 128 * 1024, 0x42);
  ASSERT_EQ(rig_.request(kOut, 0, {{kPayload, 128 * 1024, false}}).status, kOk);
  uint64_t sector = 0;
  uint32_t sectors = 128;  // the first 64 KiB, one qcow2 cluster
  std::memcpy(rig_.at(kPayload + 0x40000, 8), &sector, 8);
  std::memcpy(rig_.at(kPayload + 0x40008, 4), &sectors, 4);
  std::memset(rig_.at(kPayload + 0x4000c, 4), 0, 4);
  EXPECT_EQ(rig_.request(kDiscard, 0, {{kPayload + 0x40000, 16, false}}).status, kOk);
  expectImageHolds(64 * 1024, 64 * 1024, 0x42);  // the range after the discard is intact
}

TEST_P(BlkTest, SeveralRequestsInOneKickAllComplete) {
  constexpr uint64_t kRequests = kQueueSize / 3;  // three descriptors each
  for (uint64_t i = 0; i < kRequests; ++i) rig_.fill(kPayload + i * 0x1000, 4096, static_cast<uint8_t>(0x10 + i));
  for (uint64_t i = 0; i < kRequests; ++i) {
    uint64_t header = D + 0x2000 + i * 16, status = D + 0x3000 + i;
    uint32_t type = kOut;
    uint64_t sector = i * 8;
    std::memcpy(rig_.at(header, 16), &type, 4);
    std::memset(rig_.at(header + 4, 4), 0, 4);
    std::memcpy(rig_.at(header + 8, 8), &sector, 8);
    rig_.driver().offerChain({{header, 16, false}, {kPayload + i * 0x1000, 4096, false}, {status, 1, true}});
  }
  rig_.transport().kick(0);
  ASSERT_TRUE(rig_.waitForUsed(kRequests));
  for (uint64_t i = 0; i < kRequests; ++i) EXPECT_EQ(*rig_.at(D + 0x3000 + i), kOk) << i;
  rig_.fill(kPayload + 0x10000, kRequests * 4096, 0);
  ASSERT_EQ(rig_.request(kIn, 0, {{kPayload + 0x10000, kRequests * 4096, true}}).status, kOk);
  for (uint64_t i = 0; i < kRequests; ++i) EXPECT_TRUE(rig_.filledWith(kPayload + 0x10000 + i * 4096, 4096, static_cast<uint8_t>(0x10 + i)));
}

TEST_P(BlkTest, RequestsBeyondTheEndFailWithIoErr) {
  EXPECT_EQ(rig_.request(kIn, kSectors - 1, {{kPayload, 512, true}}).status, kOk);  // the last sector
  EXPECT_EQ(rig_.request(kIn, kSectors, {{kPayload, 512, true}}).status, kIoErr);
  EXPECT_EQ(rig_.request(kOut, kSectors - 1, {{kPayload, 1024, false}}).status, kIoErr);  // straddles the end
  EXPECT_EQ(rig_.request(kIn, ~0ull, {{kPayload, 512, true}}).status, kIoErr);  // sector * 512 would overflow
  EXPECT_EQ(rig_.request(kOut, (~0ull / 512) + 1, {{kPayload, 512, false}}).status, kIoErr);
  uint64_t sector = kSectors - 2;
  uint32_t sectors = 4;
  std::memcpy(rig_.at(kPayload + 0x8000, 8), &sector, 8);
  std::memcpy(rig_.at(kPayload + 0x8008, 4), &sectors, 4);
  EXPECT_EQ(rig_.request(kWriteZeroes, 0, {{kPayload + 0x8000, 16, false}}).status, kIoErr);
  EXPECT_EQ(rig_.request(kDiscard, 0, {{kPayload + 0x8000, 16, false}}).status, kIoErr);
  EXPECT_FALSE(rig_.transport().broken());  // a wrong request is the guest's error, not a broken driver
  // Nor a host I/O error: no BLOCK_IO_ERROR, which a guest could otherwise send vmmd in a flood.
  EXPECT_TRUE(rig_.errors.empty());
}

TEST_P(BlkTest, WriteToReadOnlyOrMisSizedRequestsReportNoHostError) {
  EXPECT_EQ(rig_.request(kOut, 0, {{kPayload, 100, false}}).status, kIoErr);
  EXPECT_EQ(rig_.request(kIn, kSectors + 8, {{kPayload, 4096, true}}).status, kIoErr);
  EXPECT_TRUE(rig_.errors.empty());
}

TEST_P(BlkTest, PayloadNotAMultipleOfTheSectorFails) {
  EXPECT_EQ(rig_.request(kOut, 0, {{kPayload, 100, false}}).status, kIoErr);
  EXPECT_EQ(rig_.request(kIn, 0, {{kPayload, 700, true}}).status, kIoErr);
}

TEST_P(BlkTest, UnknownRequestTypeIsUnsupported) {
  Outcome outcome = rig_.request(99, 0, {{kPayload, 512, true}});
  EXPECT_EQ(outcome.status, kUnsupported);
  EXPECT_EQ(outcome.used_length, 1u);
}

INSTANTIATE_TEST_SUITE_P(Formats, BlkTest, ::testing::Values("raw", "qcow2"));

// ---- a read-only disk ----

class BlkReadOnlyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ / "ro.raw";
    ASSERT_TRUE(storage::createRaw(path_, kDiskBytes).ok());
    int fd = ::open(path_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    std::vector<uint8_t> pattern(4096, 0x99);
    ASSERT_EQ(::pwrite(fd, pattern.data(), pattern.size(), 0), 4096);
    ::close(fd);
    ASSERT_TRUE(rig_.start(path_, true).ok());
  }
  bool fileStillHoldsPattern() {
    int fd = ::open(path_.c_str(), O_RDONLY);
    std::vector<uint8_t> data(4096);
    bool same = ::pread(fd, data.data(), data.size(), 0) == 4096 &&
                std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == 0x99; });
    ::close(fd);
    return same;
  }
  storage::test::ScratchDir dir_;
  std::string path_;
  BlkRig rig_;
};

TEST_F(BlkReadOnlyTest, AdvertisesReadOnly) { EXPECT_TRUE(rig_.device().deviceFeatures() & (1ull << 5)); }

TEST_F(BlkReadOnlyTest, ReadsWork) {
  EXPECT_EQ(rig_.request(kIn, 0, {{kPayload, 4096, true}}).status, kOk);
  EXPECT_TRUE(rig_.filledWith(kPayload, 4096, 0x99));
}

TEST_F(BlkReadOnlyTest, WritesZeroesAndDiscardsAreRefused) {
  rig_.fill(kPayload, 4096, 0x11);
  EXPECT_EQ(rig_.request(kOut, 0, {{kPayload, 4096, false}}).status, kIoErr);
  uint64_t sector = 0;
  uint32_t sectors = 8;
  std::memcpy(rig_.at(kPayload + 0x8000, 8), &sector, 8);
  std::memcpy(rig_.at(kPayload + 0x8008, 4), &sectors, 4);
  EXPECT_EQ(rig_.request(kWriteZeroes, 0, {{kPayload + 0x8000, 16, false}}).status, kIoErr);
  EXPECT_EQ(rig_.request(kDiscard, 0, {{kPayload + 0x8000, 16, false}}).status, kIoErr);
  rig_.stop();
  EXPECT_TRUE(fileStillHoldsPattern());
}

// ---- malformed requests ----

class BlkMalformedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ / "disk.raw";
    ASSERT_TRUE(storage::createRaw(path_, kDiskBytes).ok());
    ASSERT_TRUE(rig_.start(path_, false).ok());
  }
  // The device refused the chain: broken, nothing returned, nothing written.
  void expectBrokenAndUntouched() {
    EXPECT_TRUE(rig_.transport().broken());
    EXPECT_EQ(rig_.driver().usedIndex(), 0);
    EXPECT_TRUE(rig_.filledWith(kStatus, 1, 0xCC));
    EXPECT_TRUE(rig_.filledWith(kPayload, 0x10000, 0xCC));
  }
  storage::test::ScratchDir dir_;
  std::string path_;
  BlkRig rig_;
};

// Requests whose header or status byte is missing or misplaced: no correct driver sends them.
struct MalformedRequest {
  const char* name;
  uint32_t type;
  std::vector<Segment> chain;
};

class BlkMalformedRequestTest : public BlkMalformedTest, public ::testing::WithParamInterface<MalformedRequest> {};

TEST_P(BlkMalformedRequestTest, BreaksTheDeviceWithoutWriting) {
  rig_.writeHeader(GetParam().type, 0);
  EXPECT_EQ(rig_.offerAndWait(GetParam().chain).used_length, ~0u);
  expectBrokenAndUntouched();
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, BlkMalformedRequestTest,
    ::testing::Values(MalformedRequest{"header_too_short", kIn, {{kHeader, 8, false}, {kStatus, 1, true}}},
                      MalformedRequest{"zero_length_header", kIn, {{kHeader, 0, false}, {kPayload, 512, true}, {kStatus, 1, true}}},
                      MalformedRequest{"no_status_descriptor", kOut, {{kHeader, 16, false}, {kPayload, 512, false}}},
                      // The status byte would have to take the data buffer's last byte: refused instead.
                      MalformedRequest{"zero_length_status", kIn, {{kHeader, 16, false}, {kPayload, 512, true}, {kStatus, 0, true}}},
                      MalformedRequest{"status_device_readable", kFlush, {{kHeader, 16, false}, {kStatus, 1, false}}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(BlkMalformedTest, ReadIntoDeviceReadableBufferWritesNothingThere) {
  // A read whose data buffer the device may not write: the data buffer is the header's payload
  // and stays untouched; the request carries no writable data, so it reads nothing.
  rig_.writeHeader(kIn, 0);
  Outcome outcome = rig_.offerAndWait({{kHeader, 16, false}, {kPayload, 512, false}, {kStatus, 1, true}});
  EXPECT_FALSE(rig_.transport().broken());
  EXPECT_EQ(outcome.used_length, 1u);
  EXPECT_TRUE(rig_.filledWith(kPayload, 0x10000, 0xCC));
}

TEST_F(BlkMalformedTest, WriteFromDeviceWritableBufferWritesNothingToDisk) {
  rig_.fill(kPayload, 512, 0x66);
  rig_.writeHeader(kOut, 0);
  Outcome outcome = rig_.offerAndWait({{kHeader, 16, false}, {kPayload, 512, true}, {kStatus, 1, true}});
  EXPECT_FALSE(rig_.transport().broken());
  EXPECT_EQ(outcome.used_length, 1u);
  EXPECT_TRUE(rig_.filledWith(kPayload, 512, 0x66));  // the device did not write into it either
  rig_.fill(kPayload + 0x1000, 512, 0xCC);
  ASSERT_EQ(rig_.request(kIn, 0, {{kPayload + 0x1000, 512, true}}).status, kOk);
  EXPECT_TRUE(rig_.filledWith(kPayload + 0x1000, 512, 0));  // the disk was not written
}

class BlkHostileChainTest : public BlkMalformedTest, public ::testing::WithParamInterface<testing::HostileChain> {};

TEST_P(BlkHostileChainTest, BreaksTheDeviceWithoutWriting) {
  testing::offerHostile(rig_.driver(), GetParam());
  rig_.transport().kick(0);
  EXPECT_TRUE(rig_.transport().broken()) << GetParam().name;
  EXPECT_EQ(rig_.driver().usedIndex(), 0);
  EXPECT_TRUE(rig_.filledWith(D, 0x8000, 0xCC));  // the data area (the indirect table lives above it)
}

INSTANTIATE_TEST_SUITE_P(Hostile, BlkHostileChainTest, ::testing::ValuesIn(testing::hostileChains(kQueueSize, kRam)),
                         [](const auto& info) { return testing::hostileChainName(info.param.name); });

// A driver that offers the same head again while the device still holds it (here: every ring
// slot names head 0, each a read the disk must serve): the device would keep one request per
// offer, however far the driver moves avail.idx. Broken at the first reuse, as QEMU fails a
// queue past its size; the request already taken still completes.
TEST_F(BlkMalformedTest, HeadOfferedAgainWhileInFlightBreaksTheDevice) {
  rig_.writeHeader(kIn, 0);
  rig_.driver().setDescriptor(0, {kHeader, 16, testing::kNext, 1});
  rig_.driver().setDescriptor(1, {kPayload, 4096, testing::kNext | testing::kWrite, 2});
  rig_.driver().setDescriptor(2, {kStatus, 1, testing::kWrite, 0});
  for (uint16_t i = 0; i < kQueueSize; ++i) rig_.driver().offer(0);
  rig_.transport().kick(0);
  EXPECT_TRUE(rig_.transport().broken());
  rig_.drain();
  EXPECT_LE(rig_.driver().usedIndex(), 1);
}

// Heads the device returned may be offered again at once: not a reuse.
TEST_F(BlkMalformedTest, HeadOfferedAgainAfterItsCompletionIsServed) {
  rig_.writeHeader(kIn, 0);
  for (int i = 0; i < 3 * kQueueSize; ++i) {
    rig_.driver().setDescriptor(0, {kHeader, 16, testing::kNext, 1});
    rig_.driver().setDescriptor(1, {kPayload, 4096, testing::kNext | testing::kWrite, 2});
    rig_.driver().setDescriptor(2, {kStatus, 1, testing::kWrite, 0});
    rig_.driver().offer(0);
    rig_.transport().kick(0);
    ASSERT_TRUE(rig_.waitForUsed(static_cast<uint16_t>(i + 1))) << i;
  }
  EXPECT_FALSE(rig_.transport().broken());
}

TEST_F(BlkMalformedTest, ResetDropsCompletionsOfRequestsInFlight) {
  rig_.fill(kPayload, 4096, 0x21);
  rig_.writeHeader(kOut, 0);
  rig_.driver().offerChain({{kHeader, 16, false}, {kPayload, 4096, false}, {kStatus, 1, true}});
  rig_.transport().kick(0);
  rig_.transport().resetDevice();  // waits for the I/O thread, then forgets the request
  rig_.drain();                    // runs the stale completion: it must not touch the queue
  EXPECT_EQ(rig_.driver().usedIndex(), 0);
  EXPECT_EQ(*rig_.at(kStatus), 0xCC);
}

}  // namespace
}  // namespace vmmd::virtio

namespace vmmd::virtio {
namespace {

// A request handed to the I/O threads is in flight until its completion runs on the loop: the
// state is refused until then (the machine drains first); a state loads only for the same disk.
TEST(BlkState, RefusedWhileARequestIsInFlightAndOnlyForTheSameDisk) {
  REQUIRE_QEMU_IMG();
  storage::test::ScratchDir dir;
  BlkRig rig;
  ASSERT_TRUE(rig.start(makeImage(dir, "raw"), false).ok());
  auto idle = rig.device().saveState();
  ASSERT_TRUE(idle.ok()) << idle.error().message();
  EXPECT_EQ(rig.device().requestsInFlight(), 0u);

  rig.writeHeader(kIn, 0);
  rig.driver().offerChain({{kHeader, 16, false}, {kPayload, 4096, true}, {kStatus, 1, true}});
  rig.transport().kick(0);
  EXPECT_EQ(rig.device().requestsInFlight(), 1u);
  auto busy = rig.device().saveState();
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.error().message().find("1 requests in flight"), std::string::npos) << busy.error().message();
  ASSERT_TRUE(rig.waitForUsed(1));
  EXPECT_EQ(rig.device().requestsInFlight(), 0u);
  auto drained = rig.device().saveState();
  ASSERT_TRUE(drained.ok()) << drained.error().message();
  EXPECT_EQ(drained->bytes, idle->bytes);
  EXPECT_TRUE(rig.device().loadState(*drained).ok());
  vmmd::testing::expectHostileStatesRefused(rig.device(), *drained);

  BlkRig read_only;
  ASSERT_TRUE(read_only.start(makeImage(dir, "qcow2"), true).ok());
  auto refused = read_only.device().loadState(*drained);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("for a writable disk"), std::string::npos) << refused.error().message();
}

}  // namespace
}  // namespace vmmd::virtio
