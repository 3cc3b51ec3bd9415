#include "vmm/devices/virtio/blk.h"

#include <cstring>
#include <vector>

namespace vmmd::virtio {
namespace {

constexpr uint64_t kSectorSize = 512;
constexpr uint32_t kTypeIn = 0, kTypeOut = 1, kTypeFlush = 4, kTypeGetId = 8, kTypeDiscard = 11, kTypeWriteZeroes = 13;
constexpr uint8_t kStatusOk = 0, kStatusIoErr = 1, kStatusUnsupported = 2;
constexpr uint64_t kFeatureSegMax = 1ull << 2, kFeatureReadOnly = 1ull << 5, kFeatureBlockSize = 1ull << 6,
                   kFeatureFlush = 1ull << 9, kFeatureDiscard = 1ull << 13, kFeatureWriteZeroes = 1ull << 14;
constexpr uint32_t kSegMax = 254;            // queue size minus header and status descriptors
constexpr uint32_t kMaxDiscardSectors = 1u << 22;  // 2 GiB per discard / write-zeroes request
constexpr size_t kIdBytes = 20;
// Work items serving requests at once (libuv's default thread pool size), and the most requests
// one of them serves before their completions go back to the guest.
constexpr size_t kWorkers = 4;
constexpr size_t kMaxBatch = 16;

// Copies `length` bytes starting `skip` bytes into a list of buffers into `out`.
bool gather(const std::vector<Buffer>& buffers, uint64_t skip, std::span<uint8_t> out) {
  size_t done = 0;
  for (const Buffer& b : buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    size_t n = std::min<uint64_t>(b.length - skip, out.size() - done);
    std::memcpy(out.data() + done, b.data + skip, n);
    done += n;
    skip = 0;
    if (done == out.size()) return true;
  }
  return done == out.size();
}

// A request's data buffers as the block layer's buffer list (Byte: const for a write).
template <class Byte>
std::vector<std::span<Byte>> blockBuffers(const std::vector<Buffer>& data) {
  std::vector<std::span<Byte>> parts;
  parts.reserve(data.size());
  for (const Buffer& b : data) parts.emplace_back(b.data, b.length);
  return parts;
}

}  // namespace

struct VirtioBlk::Request {
  uint16_t head;
  uint64_t generation;
  uint32_t type = 0;
  uint64_t sector = 0;
  std::vector<Buffer> data;   // the payload buffers (readable for OUT, writable for IN)
  uint64_t data_bytes = 0;
  uint8_t* status = nullptr;  // the last writable byte
  std::vector<uint8_t> segment;  // discard / write-zeroes segment
  uint8_t result = kStatusOk;
  uint32_t written = 1;          // bytes the device wrote into the chain, status included
  std::string error;  // set only by the disk: what BLOCK_IO_ERROR reports
};

VirtioBlk::VirtioBlk(std::shared_ptr<storage::BlockDevice> disk, std::string serial, bool no_flush, Executor executor,
                     IoErrorHandler on_error)
    : disk_(std::move(disk)),
      serial_(std::move(serial)),
      no_flush_(no_flush),
      executor_(std::move(executor)),
      on_error_(std::move(on_error)) {}

VirtioBlk::~VirtioBlk() { quiesce(); }

uint64_t VirtioBlk::deviceFeatures() const {
  uint64_t features = kFeatureSegMax | kFeatureBlockSize | kFeatureFlush | kFeatureDiscard | kFeatureWriteZeroes;
  if (disk_->readOnly()) features |= kFeatureReadOnly;
  return features;
}

void VirtioBlk::readConfig(uint64_t offset, std::span<uint8_t> data) {
  uint8_t config[64] = {};
  auto put = [&](size_t at, uint64_t value, size_t width) { std::memcpy(config + at, &value, width); };
  put(0, disk_->size() / kSectorSize, 8);  // capacity in 512-byte sectors
  put(12, kSegMax, 4);
  put(20, kSectorSize, 4);                 // blk_size
  put(34, 1, 2);                           // num_queues
  put(36, kMaxDiscardSectors, 4);
  put(40, 1, 4);                           // max_discard_seg
  put(44, 1, 4);                           // discard_sector_alignment
  put(48, kMaxDiscardSectors, 4);
  put(52, 1, 4);                           // max_write_zeroes_seg
  put(56, 1, 1);                           // write_zeroes_may_unmap
  std::fill(data.begin(), data.end(), 0);
  if (offset < sizeof config) std::memcpy(data.data(), config + offset, std::min<size_t>(data.size(), sizeof config - offset));
}

void VirtioBlk::activate() { active_ = true; }

Status VirtioBlk::replaceDisk(std::shared_ptr<storage::BlockDevice> disk) {
  std::lock_guard lock(io_mutex_);
  if (in_flight_.load() > 0 || workers_ > 0) return Error(std::string(name()) + ": cannot change disks with requests in flight");
  if (disk->size() != disk_->size() || disk->readOnly() != disk_->readOnly()) {
    return Error(std::string(name()) + ": " + disk->path() + " reopened with another size or access mode");
  }
  disk_ = std::move(disk);
  return {};
}

Result<DeviceState> VirtioBlk::saveState() const {
  if (size_t n = in_flight_.load()) {
    return Error(std::string(name()) + ": " + std::to_string(n) + " requests in flight (the machine must be drained first)");
  }
  StateWriter out;
  out.u64(disk_->size());
  out.boolean(disk_->readOnly());
  return DeviceState{name(), kStateVersion, out.take()};
}

Status VirtioBlk::loadState(const DeviceState& state) {
  if (auto st = checkState(state, name(), kStateVersion); !st) return st;
  StateReader in(state.bytes);
  uint64_t size = in.u64();
  bool read_only = in.boolean();
  if (auto st = in.finish(name()); !st) return st;
  if (size != disk_->size()) {
    return Error(std::string(name()) + ": the state is for a disk of " + std::to_string(size) + " bytes, this one has " + std::to_string(disk_->size()));
  }
  if (read_only != disk_->readOnly()) return Error(std::string(name()) + ": the state is for a " + (read_only ? "read-only" : "writable") + " disk");
  return {};
}

void VirtioBlk::quiesce() {
  std::unique_lock lock(io_mutex_);
  workers_done_.wait(lock, [&] { return workers_ == 0; });
}

void VirtioBlk::reset() {
  quiesce();
  {
    std::lock_guard lock(io_mutex_);
    in_flight_ -= pending_.size();
    pending_.clear();  // left by a worker that stopped at kMaxBatch: they belong to the old driver
  }
  active_ = false;
  ++generation_;
}

void VirtioBlk::kick(uint16_t queue_index) {
  if (!active_ || queue_index != 0) return;
  Virtqueue& queue = transport_->queue(0);
  std::vector<std::shared_ptr<Request>> for_disk;  // everything this kick offered that needs I/O
  for (uint32_t served = 0;; ++served) {
    if (served == kickBudget(queue)) {
      transport_->kickAgain(0);
      break;
    }
    auto popped = queue.pop(chain_);
    if (!popped) {
      dispatch(std::move(for_disk));  // the good requests before the broken one still run
      transport_->fail(popped.error().message());
      return;
    }
    if (!*popped) {
      if (queue.enableNotifications()) continue;  // more arrived while we looked
      break;
    }
    DescriptorChain& chain = chain_;
    auto request = std::make_shared<Request>();
    request->head = chain.head;
    request->generation = generation_;
    uint8_t header[16];
    // Header (16 readable bytes) first, status (1 writable byte) last: anything else is a
    // malformed request the driver can never have meant.
    if (!gather(chain.readable, 0, header) || chain.writable.empty() || chain.writable.back().length == 0) {
      dispatch(std::move(for_disk));
      transport_->fail("request " + std::to_string(chain.head) + " has no header or no status byte");
      return;
    }
    std::memcpy(&request->type, header, 4);
    std::memcpy(&request->sector, header + 8, 8);
    Buffer& last = chain.writable.back();
    request->status = last.data + last.length - 1;
    switch (request->type) {
      case kTypeIn: {
        request->data = chain.writable;
        request->data.back().length -= 1;  // the status byte is not payload
        break;
      }
      case kTypeOut:
      case kTypeDiscard:
      case kTypeWriteZeroes: {
        // Payload: every readable byte after the header.
        uint64_t skip = 16;
        for (const Buffer& b : chain.readable) {
          if (skip >= b.length) {
            skip -= b.length;
            continue;
          }
          request->data.push_back({b.data + skip, static_cast<uint32_t>(b.length - skip), false});
          skip = 0;
        }
        break;
      }
      case kTypeGetId:
        request->data = chain.writable;
        request->data.back().length -= 1;
        break;
      default:
        break;
    }
    for (const Buffer& b : request->data) request->data_bytes += b.length;
    if (prepare(*request)) {
      for_disk.push_back(std::move(request));
    } else {
      complete({request});
    }
  }
  dispatch(std::move(for_disk));
}

bool VirtioBlk::prepare(Request& r) {
  uint64_t capacity = disk_->size();
  auto in_range = [&](uint64_t sector, uint64_t bytes) {
    return sector <= capacity / kSectorSize && bytes <= capacity - sector * kSectorSize;
  };
  // Requests that need no disk I/O, or that are wrong, complete at once.
  switch (r.type) {
    case kTypeIn:
    case kTypeOut:
      // Beyond the end of the disk, not sector-sized, or a write the device said it refuses
      // (VIRTIO_BLK_F_RO): the guest's mistake, so an IOERR status and nothing more, as QEMU
      // does (no BLOCK_IO_ERROR: a guest could otherwise flood vmmd with events).
      if (r.data_bytes % kSectorSize || !in_range(r.sector, r.data_bytes) || (r.type == kTypeOut && disk_->readOnly())) {
        r.result = kStatusIoErr;
      }
      break;
    case kTypeGetId: {
      std::vector<uint8_t> id(kIdBytes, 0);
      std::memcpy(id.data(), serial_.data(), std::min(serial_.size(), kIdBytes));
      uint64_t done = 0;
      for (const Buffer& b : r.data) {
        size_t n = std::min<uint64_t>(b.length, kIdBytes - done);
        std::memcpy(b.data, id.data() + done, n);
        done += n;
        if (done == kIdBytes) break;
      }
      r.written = static_cast<uint32_t>(done + 1);
      return false;
    }
    case kTypeFlush:
      if (no_flush_) return false;
      break;
    case kTypeDiscard:
    case kTypeWriteZeroes: {
      if (r.data_bytes != 16 || disk_->readOnly()) {
        r.result = disk_->readOnly() ? kStatusIoErr : kStatusUnsupported;  // one segment per request
        break;
      }
      r.segment.resize(16);
      std::memcpy(r.segment.data(), r.data[0].data, std::min<size_t>(16, r.data[0].length));
      if (r.data[0].length < 16) gather(r.data, 0, r.segment);
      uint64_t sector;
      uint32_t sectors;
      std::memcpy(&sector, r.segment.data(), 8);
      std::memcpy(&sectors, r.segment.data() + 8, 4);
      if (sectors > kMaxDiscardSectors || !in_range(sector, uint64_t{sectors} * kSectorSize)) {
        r.result = kStatusIoErr;  // the guest's mistake, as above: no BLOCK_IO_ERROR
      }
      break;
    }
    default:
      r.result = kStatusUnsupported;
      break;
  }
  return r.result == kStatusOk;
}

// The disk I/O of one request, on an I/O thread.
void VirtioBlk::serve(storage::BlockDevice& disk, Request& q) {
  Status status;
  uint64_t offset = q.sector * kSectorSize;
  if (q.type == kTypeIn || q.type == kTypeOut) {
    // The whole request at once: a qcow2 disk then allocates every cluster the request fills in
    // one go (the guest's pages would otherwise allocate and copy-on-write a cluster per page).
    status = q.type == kTypeIn ? disk.readv(offset, blockBuffers<uint8_t>(q.data))
                               : disk.writev(offset, blockBuffers<const uint8_t>(q.data));
    if (status && q.type == kTypeIn) q.written = static_cast<uint32_t>(q.data_bytes + 1);
  } else if (q.type == kTypeFlush) {
    status = disk.flush();
  } else {
    uint64_t sector;
    uint32_t sectors;
    std::memcpy(&sector, q.segment.data(), 8);
    std::memcpy(&sectors, q.segment.data() + 8, 4);
    uint64_t bytes = uint64_t{sectors} * kSectorSize;
    status = q.type == kTypeDiscard ? disk.discard(sector * kSectorSize, bytes) : disk.writeZeroes(sector * kSectorSize, bytes);
  }
  if (!status) {
    q.result = kStatusIoErr;
    q.error = status.error().message();
  }
}

void VirtioBlk::dispatch(std::vector<std::shared_ptr<Request>> requests) {
  in_flight_ += requests.size();
  {
    std::lock_guard lock(io_mutex_);
    for (auto& request : requests) pending_.push_back(std::move(request));
  }
  startWorkers();
}

// A thread hand-off and a completion cost more than a cached 4 KiB read, so requests are not
// handed to the executor one by one: up to kWorkers work items each serve pending requests in
// turn until none is left (or kMaxBatch are done), then complete them together, with one
// interrupt.
void VirtioBlk::startWorkers() {
  size_t start;
  {
    std::lock_guard lock(io_mutex_);
    start = std::min(kWorkers - workers_, pending_.size());
    workers_ += start;
  }
  for (size_t i = 0; i < start; ++i) {
    auto served = std::make_shared<std::vector<std::shared_ptr<Request>>>();
    executor_([this, served] { serveBatch(*served); },
              [this, served, alive = std::weak_ptr<int>(alive_)] {
                if (!alive.lock()) return;
                in_flight_ -= served->size();
                complete(*served);
                startWorkers();  // a worker that stopped at kMaxBatch may have left some behind
              });
  }
}

void VirtioBlk::serveBatch(std::vector<std::shared_ptr<Request>>& served) {
  for (;;) {
    std::shared_ptr<Request> next;
    {
      std::lock_guard lock(io_mutex_);
      if (pending_.empty() || served.size() >= kMaxBatch) {
        if (--workers_ == 0) workers_done_.notify_all();
        return;
      }
      next = std::move(pending_.front());
      pending_.pop_front();
    }
    serve(*disk_, *next);
    served.push_back(std::move(next));
  }
}

void VirtioBlk::complete(const std::vector<std::shared_ptr<Request>>& requests) {
  auto guard = lock();
  if (!active_) return;
  Virtqueue& queue = transport_->queue(0);
  bool pushed = false;
  for (const auto& request : requests) {
    const Request& r = *request;
    if (r.generation != generation_) continue;  // the device was reset meanwhile
    *r.status = r.result;
    if (r.result == kStatusIoErr && !r.error.empty() && on_error_) {
      const char* operation = r.type == kTypeIn ? "read" : r.type == kTypeFlush ? "flush" : "write";
      on_error_(operation, r.error);
    }
    if (auto st = queue.push(r.head, r.written); !st) {
      transport_->fail(st.error().message());
      return;
    }
    pushed = true;
  }
  if (pushed) transport_->signalUsed(0);
}

}  // namespace vmmd::virtio
