// virtio-blk rows: random 4 KiB / 64 KiB reads and writes through the device model and the
// storage layer (libuv's thread pool, as in the worker), against pread/pwrite of the same sizes on
// the same file with the same flags from as many threads as the pool has.
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "base/unique_fd.h"
#include "tests/bench/devices/harness/bench.h"
#include "tests/vmm/devices/virtio/harness_transport.h"
#include "vmm/backends/io_executor.h"
#include "vmm/devices/virtio/blk.h"

namespace vmmd::bench {
namespace {

using virtio::testing::DriverHarness;
using virtio::testing::HarnessTransport;

constexpr uint32_t kIn = 0, kOut = 1;
constexpr uint16_t kQueueSize = 256;
constexpr uint64_t kDataArea = DriverHarness::kData;      // request slot i's data at + i * size
constexpr uint64_t kHeaderArea = 15ull << 20;             // slot i's header at + 32 * i, status + 16

struct Case {
  std::string format;  // "raw", "qcow2"
  storage::CacheMode cache;
  uint32_t type;       // kIn, kOut
  uint32_t size;       // bytes per request
};

std::string describe(const Case& c) {
  return "blk " + c.format + (c.cache == storage::CacheMode::None ? " cache=none " : " writeback  ") +
         (c.type == kIn ? "read  " : "write ") + std::to_string(c.size / 1024) + "k";
}

// A file of `bytes` non-zero data (so qcow2 made from it is fully allocated).
Status fillFile(const std::string& path, uint64_t bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Error::fromErrno(path);
  std::vector<uint8_t> chunk(1 << 20);
  std::mt19937_64 random(1);
  for (auto& b : chunk) b = static_cast<uint8_t>(random() | 1);
  for (uint64_t done = 0; done < bytes; done += chunk.size()) {
    if (::pwrite(fd.get(), chunk.data(), chunk.size(), static_cast<off_t>(done)) != static_cast<ssize_t>(chunk.size())) {
      return Error::fromErrno("write " + path);
    }
  }
  if (::fsync(fd.get()) != 0) return Error::fromErrno("fsync " + path);
  return {};
}

Result<Figure> throughDevice(const std::string& path, const Case& c, const Options& options) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return Error("uv_loop_init");
  Figure figure;
  Status outcome;
  {
    storage::OpenOptions open;
    open.cache = c.cache;
    auto disk = storage::openImage(path, open);
    if (!disk) return disk.error();
    uint64_t slots_on_disk = (*disk)->size() / c.size;
    virtio::VirtioBlk blk(std::move(*disk), "bench", false, uvIoExecutor(&loop), nullptr);
    auto memory = GuestMemory::create(HarnessTransport::memoryFor(1));
    if (!memory) return memory.error();
    if (kDataArea + uint64_t{options.queue_depth} * c.size > kHeaderArea) return Error("queue depth too large");
    HarnessTransport transport(*memory, blk, kQueueSize, virtio::kFeatureVersion1 | blk.deviceFeatures());
    if (auto st = transport.start(); !st) return st.error();
    DriverHarness& driver = transport.driver(0);
    std::mt19937_64 random(42);
    // Slot i always uses descriptors 3i..3i+2: header, data, status.
    auto submit = [&](uint16_t slot) {
      uint64_t header = kHeaderArea + 32ull * slot, status = header + 16;
      uint64_t sector = (random() % slots_on_disk) * (c.size / 512);
      uint8_t bytes[16] = {};
      std::memcpy(bytes, &c.type, 4);
      std::memcpy(bytes + 8, &sector, 8);
      (void)memory->write(header, bytes);
      uint16_t d = static_cast<uint16_t>(3 * slot);
      uint16_t data_flags = static_cast<uint16_t>(virtio::testing::kNext | (c.type == kIn ? virtio::testing::kWrite : 0));
      driver.setDescriptor(d, {header, 16, virtio::testing::kNext, static_cast<uint16_t>(d + 1)});
      driver.setDescriptor(d + 1, {kDataArea + uint64_t{slot} * c.size, c.size, data_flags, static_cast<uint16_t>(d + 2)});
      driver.setDescriptor(d + 2, {status, 1, virtio::testing::kWrite, 0});
      driver.offer(d);
    };
    for (uint16_t slot = 0; slot < options.queue_depth; ++slot) submit(slot);
    transport.kick(0);
    uint64_t completed = 0;
    uint16_t seen = 0;
    unsigned in_flight = options.queue_depth;
    auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    bool stopping = false;
    while (in_flight > 0 && !transport.broken()) {
      uv_run(&loop, UV_RUN_ONCE);
      bool offered = false;
      for (; seen != driver.usedIndex(); ++seen) {
        uint16_t slot = static_cast<uint16_t>(driver.usedElement(seen).first / 3);
        uint8_t status = *memory->hostAddress(kHeaderArea + 32ull * slot + 16, 1);
        if (status != 0) outcome = Error(describe(c) + ": request failed with status " + std::to_string(status));
        --in_flight;
        if (stopping) continue;
        ++completed;
        submit(slot);
        ++in_flight;
        offered = true;
      }
      if (!stopping && (elapsed = since(start)) >= options.seconds) stopping = true;
      if (offered) transport.kick(0);
    }
    if (transport.broken()) outcome = Error(describe(c) + ": " + transport.failures().front());
    figure.operations_per_second = completed / elapsed;
    figure.mib_per_second = figure.operations_per_second * c.size / (1 << 20);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (!outcome) return outcome.error();
  return figure;
}

// Where the guest's data lies in the image file: [offset, offset + length). The baseline reads and
// writes only there, so a qcow2's metadata survives it. Fully allocated images made by
// `qemu-img convert` keep their clusters in one run; anything else is refused.
struct FileExtent {
  uint64_t offset = 0, length = 0;
};

Result<FileExtent> dataExtent(const std::string& path) {
  std::string command = "qemu-img map --output=json " + path;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return Error::fromErrno(command);
  std::string json;
  char chunk[4096];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0) json.append(chunk, n);
  if (::pclose(pipe) != 0) return Error("'" + command + "' failed");
  FileExtent extent;
  bool first = true;
  // One object per line: {"start": S, "length": L, ..., "data": true, "offset": O}
  for (size_t at = json.find('{'); at != std::string::npos; at = json.find('{', at + 1)) {
    auto field = [&](const char* name) -> uint64_t {
      size_t key = json.find(std::string("\"") + name + "\":", at);
      return key == std::string::npos ? 0 : std::strtoull(json.c_str() + key + std::strlen(name) + 3, nullptr, 10);
    };
    if (json.compare(json.find("\"data\":", at) + 7, 5, " true") != 0) return Error(path + ": not fully allocated");
    uint64_t offset = field("offset"), length = field("length");
    if (first) extent.offset = offset;
    if (!first && offset != extent.offset + extent.length) return Error(path + ": data clusters not in one run");
    extent.length += length;
    first = false;
  }
  if (first) return Error(path + ": no data");
  return extent;
}

Result<Figure> direct(const std::string& path, FileExtent extent, const Case& c, const Options& options) {
  int flags = (c.type == kIn ? O_RDONLY : O_RDWR) | O_CLOEXEC | (c.cache == storage::CacheMode::None ? O_DIRECT : 0);
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd) return Error::fromErrno("open " + path);
  uint64_t slots_on_disk = extent.length / c.size;
  std::atomic<uint64_t> completed{0};
  std::atomic<bool> stop{false}, failed{false};
  std::vector<std::thread> threads;
  auto start = std::chrono::steady_clock::now();
  for (unsigned t = 0; t < options.threads; ++t) {
    threads.emplace_back([&, t] {
      void* raw = std::aligned_alloc(4096, c.size);
      std::unique_ptr<void, decltype(&std::free)> buffer(raw, &std::free);
      std::memset(raw, 0x5A, c.size);
      std::mt19937_64 random(t + 7);
      uint64_t mine = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        off_t offset = static_cast<off_t>(extent.offset + (random() % slots_on_disk) * c.size);
        ssize_t n = c.type == kIn ? ::pread(fd.get(), raw, c.size, offset) : ::pwrite(fd.get(), raw, c.size, offset);
        if (n != static_cast<ssize_t>(c.size)) {
          failed = true;
          break;
        }
        ++mine;
      }
      completed += mine;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(options.seconds));
  stop = true;
  for (auto& thread : threads) thread.join();
  double elapsed = since(start);
  if (failed) return Error(describe(c) + ": direct I/O failed");
  Figure figure;
  figure.operations_per_second = completed / elapsed;
  figure.mib_per_second = figure.operations_per_second * c.size / (1 << 20);
  return figure;
}

}  // namespace

std::vector<Row> blockRows(const Options& options) {
  std::vector<Row> rows;
  std::string raw = options.directory + "/vmmd-device-bench.raw", qcow2 = options.directory + "/vmmd-device-bench.qcow2";
  auto fail_all = [&](const std::string& why) {
    rows.push_back({"blk", "IOPS", {}, {}, why});
    return rows;
  };
  if (auto st = fillFile(raw, options.disk_bytes); !st) return fail_all(st.error().message());
  std::string convert = "qemu-img convert -O qcow2 " + raw + " " + qcow2;
  if (std::system(convert.c_str()) != 0) return fail_all("'" + convert + "' failed");
  for (const std::string& format : {std::string("raw"), std::string("qcow2")}) {
    const std::string& path = format == "raw" ? raw : qcow2;
    auto extent = dataExtent(path);
    if (!extent) return fail_all(extent.error().message());
    for (auto cache : {storage::CacheMode::None, storage::CacheMode::Writeback}) {
      for (uint32_t type : {kIn, kOut}) {
        for (uint32_t size : {4096u, 65536u}) {
          Case c{format, cache, type, size};
          Row row{describe(c), "IOPS", {}, {}, {}};
          if (!wanted(options, row.what)) continue;
          Options round = options;
          round.seconds = options.seconds / options.rounds;
          for (unsigned i = 0; i < options.rounds && row.error.empty(); ++i) {
            auto device = throughDevice(path, c, round);
            auto physical = options.device_only ? Result<Figure>(Figure{}) : direct(path, *extent, c, round);
            if (!device) row.error = device.error().message();
            if (!physical) row.error = physical.error().message();
            if (device) row.device.addRound(*device, options.rounds);
            if (physical) row.physical.addRound(*physical, options.rounds);
          }
          rows.push_back(row);
        }
      }
    }
  }
  std::string check = "qemu-img check -q -f qcow2 " + qcow2;
  if (std::system(check.c_str()) != 0) rows.push_back({"qcow2 image after the run", "", {}, {}, "qemu-img check failed"});
  ::unlink(raw.c_str());
  ::unlink(qcow2.c_str());
  return rows;
}

}  // namespace vmmd::bench
