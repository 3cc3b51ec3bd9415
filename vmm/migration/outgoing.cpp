#include "vmm/migration/outgoing.h"

#include <sys/socket.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <future>
#include <optional>

#include <unistd.h>

#include "base/log.h"
#include "vmm/migration/mapped_ram.h"
#include "vmm/migration/stream_writer.h"
#include "vmm/sandbox/sandbox.h"

namespace vmmd::migration {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kAckTimeout{60};
using Bitmaps = std::vector<std::vector<uint64_t>>;

uint64_t msSince(Clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

uint64_t countPages(const Bitmaps& bitmaps) {
  uint64_t pages = 0;
  for (const auto& bitmap : bitmaps) {
    for (uint64_t word : bitmap) pages += static_cast<uint64_t>(std::popcount(word));
  }
  return pages;
}

class Sender {
 public:
  Sender(MigrationManager& manager, int fd, bool mapped_ram)
      : manager_(manager),
        machine_(manager.host().machine()),
        fd_(fd),
        mapped_ram_(mapped_ram),
        sink_(fd, manager.limiter(), manager.cancelled(), manager.wireBytes()),
        writer_(sink_) {}

  Status run();
  // When the guest stopped for the final pass (once run() got there).
  std::optional<Clock::time_point> stoppedAt() const { return stopped_at_; }

 private:
  // Sends the pages set in `dirty`, as runs of contiguous pages of at most kRamChunkBytes.
  Status sendPages(const Bitmaps& dirty, uint32_t pass, bool downtime);
  Result<MachineState> stopGuest();
  // mapped-ram: the layout after the summary, and the file sized for it.
  Status startMappedRam();
  // Everything written: the stream's sections, and the page slots of a mapped-ram file.
  uint64_t bytesWritten() const { return writer_.bytesWritten() + (mapped_ ? mapped_->pageBytes() : 0); }

  MigrationManager& manager_;
  Machine& machine_;
  int fd_;
  bool mapped_ram_;
  std::optional<MappedRamWriter> mapped_;
  FdSink sink_;
  StreamWriter writer_;
  uint64_t normal_ = 0, duplicate_ = 0, precopy_bytes_ = 0;
  std::optional<Clock::time_point> stopped_at_;
};

Status Sender::startMappedRam() {
  off_t base = ::lseek(fd_, 0, SEEK_CUR);
  if (base < 0) return Error::fromErrno("mapped-ram needs a regular file (file:PATH, or fd: naming one)");
  // The header and summary went out already; the layout section follows them.
  std::vector<RamRegion> regions;
  for (const auto& region : machine_.memory().regions()) regions.push_back({region.guest_address, region.size, region.host});
  RamLayout layout = planLayout(regions, writer_.bytesWritten() + RamLayout::sectionBytes(regions.size()));
  mapped_.emplace(fd_, static_cast<uint64_t>(base) - writer_.bytesWritten(), layout, manager_.limiter(), manager_.cancelled(), manager_.wireBytes());
  if (auto st = mapped_->prepare(writer_.bytesWritten()); !st) return st;
  return writer_.raw(SectionType::RamLayout, layout.encode());
}

Status Sender::sendPages(const Bitmaps& dirty, uint32_t pass, bool downtime) {
  const auto& regions = machine_.memory().regions();
  uint64_t before = bytesWritten();
  for (size_t r = 0; r < regions.size(); ++r) {
    const auto& region = regions[r];
    uint64_t pages = region.size / kPageSize;
    uint64_t page = 0;
    while (page < pages) {
      if (!(dirty[r][page / 64] >> (page % 64) & 1)) {
        // Skip clean words whole.
        if (page % 64 == 0 && dirty[r][page / 64] == 0) {
          page += 64;
        } else {
          ++page;
        }
        continue;
      }
      uint64_t run = 1;
      while (page + run < pages && run < kRamChunkBytes / kPageSize && (dirty[r][(page + run) / 64] >> ((page + run) % 64) & 1)) ++run;
      std::span<const uint8_t> data{region.host + page * kPageSize, run * kPageSize};
      auto zero = mapped_ ? mapped_->write(r, page, data) : writer_.ram(pass, region.guest_address + page * kPageSize, data);
      if (!zero) return zero.error();
      duplicate_ += *zero;
      normal_ += run - *zero;
      page += run;
      manager_.update([&](MigrationInfo& info) {
        info.ram.transferred = bytesWritten();
        info.ram.duplicate = duplicate_;
        info.ram.normal = normal_;
        info.ram.remaining -= std::min(info.ram.remaining, run * kPageSize);
      });
    }
  }
  if (!downtime) precopy_bytes_ += bytesWritten() - before;
  return {};
}

// Asks the main loop to stop the guest and save its state; waits, watching for a cancel.
Result<MachineState> Sender::stopGuest() {
  auto promise = std::make_shared<std::promise<Result<MachineState>>>();
  auto future = promise->get_future();
  MigrationHost& host = manager_.host();
  host.runOnLoop([&host, promise] {
    host.stopForCompletion([promise](Result<MachineState> state) { promise->set_value(std::move(state)); });
  });
  while (future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (manager_.cancelled().load()) return Error("cancelled while stopping the guest");
  }
  return future.get();
}

Status Sender::run() {
  uint64_t ram_bytes = machine_.memory().ramBytes();
  manager_.update([&](MigrationInfo& info) {
    info.ram.total = ram_bytes;
    info.ram.remaining = ram_bytes;
  });
  if (auto st = writer_.header(mapped_ram_ ? kFlagMappedRam : 0); !st) return st;
  if (auto st = writer_.summary(MachineSummary::of(manager_.host().config())); !st) return st;
  if (mapped_ram_) {
    if (auto st = startMappedRam(); !st) return st;
  }
  if (auto st = machine_.startDirtyLog(); !st) return st;

  // Pass 0: every page.
  Bitmaps dirty;
  for (const auto& region : machine_.memory().regions()) dirty.emplace_back((region.size / kPageSize + 63) / 64, ~uint64_t{0});
  for (size_t r = 0; r < dirty.size(); ++r) {
    uint64_t pages = machine_.memory().regions()[r].size / kPageSize;
    if (pages % 64) dirty[r].back() = (uint64_t{1} << (pages % 64)) - 1;
  }
  for (uint32_t pass = 0;; ++pass) {
    auto pass_start = Clock::now();
    uint64_t bytes_before = bytesWritten();
    uint64_t pages_sent = countPages(dirty);
    if (auto st = sendPages(dirty, pass, false); !st) return st;
    double seconds = std::max(1e-3, std::chrono::duration<double>(Clock::now() - pass_start).count());
    double bandwidth = static_cast<double>(bytesWritten() - bytes_before) / seconds;  // bytes/s

    auto next = machine_.takeDirtyPages();
    if (!next) return next.error();
    dirty = std::move(*next);
    uint64_t remaining_pages = countPages(dirty);
    uint64_t remaining = remaining_pages * kPageSize;
    // Expected downtime: what remains at the rate just measured (a pass of zero pages says
    // nothing about the link: then the limit itself, if any, is the best estimate).
    double rate = bandwidth > 0 ? bandwidth : static_cast<double>(manager_.limiter().limit());
    // Rounded up: any page left takes time, so a limit of 0 is met only by nothing left (QEMU's rule).
    uint64_t expected_ms = rate > 0 ? static_cast<uint64_t>(std::ceil(static_cast<double>(remaining) * 1000.0 / rate)) : 0;
    manager_.update([&](MigrationInfo& info) {
      info.ram.dirty_sync_count = pass + 1;
      info.ram.remaining = remaining;
      info.ram.dirty_pages_rate = static_cast<uint64_t>(static_cast<double>(remaining_pages) / seconds);
      info.ram.mbps = bandwidth * 8 / 1e6;
      info.ram.pages_per_second = static_cast<uint64_t>(static_cast<double>(pages_sent) / seconds);
      info.ram.precopy_bytes = precopy_bytes_;
      info.expected_downtime_ms = expected_ms;
    });
    uint64_t sync_count = pass + 1;
    MigrationHost& host = manager_.host();
    MigrationManager& manager = manager_;
    host.runOnLoop([&host, &manager, sync_count] {
      if (!manager.capability("events")) return;
      qmp::Json data = qmp::jsonObject();
      data.AddMember("pass", sync_count, data.GetAllocator());
      host.migrationEvent("MIGRATION_PASS", data);
    });
    if (expected_ms <= manager_.downtimeLimitMs() || remaining_pages == 0) break;
    if (pass + 1 >= kMaxPasses) {
      return Error("migration did not converge: after " + std::to_string(kMaxPasses) + " passes the guest still dirties " +
                   std::to_string(remaining >> 10) + " KiB per pass (" + std::to_string(static_cast<uint64_t>(rate) >> 10) +
                   " KiB/s sent); that needs ~" + std::to_string(expected_ms) + " ms of downtime, over downtime-limit " +
                   std::to_string(manager_.downtimeLimitMs()) + " ms");
    }
  }

  // Stop and copy.
  auto stop_start = Clock::now();
  auto state = stopGuest();
  if (!state) return state.error().withContext("stopping the guest");
  log::debug("migration: guest stopped and its state saved in " + std::to_string(msSince(stop_start)) + " ms");
  manager_.setStatus(MigrationStatus::Device);
  // What the last sync found and was not sent yet, plus what the guest wrote since.
  auto last = machine_.takeDirtyPages();
  if (!last) return last.error();
  for (size_t r = 0; r < dirty.size(); ++r) {
    for (size_t w = 0; w < dirty[r].size(); ++w) dirty[r][w] |= (*last)[r][w];
  }
  manager_.update([&](MigrationInfo& info) { info.ram.remaining = countPages(dirty) * kPageSize; });
  if (auto st = sendPages(dirty, kMaxPasses, true); !st) return st;
  if (mapped_) {
    if (auto st = mapped_->finish(writer_); !st) return st;
  }
  for (const auto& section : state->sections) {
    if (auto st = writer_.state(section); !st) return st;
  }
  if (auto st = writer_.end(); !st) return st;
  log::debug("migration: stream ended " + std::to_string(msSince(stop_start)) + " ms after the stop");
  stopped_at_ = stop_start;
  manager_.update([&](MigrationInfo& info) {
    info.downtime_ms = msSince(stop_start);
    info.ram.transferred = bytesWritten();
    info.ram.remaining = 0;
    info.ram.precopy_bytes = precopy_bytes_;
    info.ram.downtime_bytes = bytesWritten() - precopy_bytes_;
  });
  return {};
}

}  // namespace

void runOutgoing(MigrationManager& manager, MigrationUri uri) {
  auto setup_start = Clock::now();
  Machine& machine = manager.host().machine();
  // Under -sandbox on the thread narrows the main loop's filter (inherited) to its own.
  Status confined = sandbox::confineThread(sandbox::Role::Migration);
  auto channel = confined ? openOutgoing(uri, [&manager](const std::string& name) { return manager.takeFd(name); }, manager.cancelled()) : Result<Channel>(confined.error());
  Status result;
  if (!channel) {
    result = channel.error();
  } else {
    manager.update([&](MigrationInfo& info) { info.setup_ms = msSince(setup_start); });
    manager.setStatus(MigrationStatus::Active);
    Sender sender(manager, channel->fd.get(), manager.capability("mapped-ram"));
    result = sender.run();
    machine.stopDirtyLog();
    if (result) {
      // The stream is whole: tell the reader nothing follows; on a socket, wait for its word that
      // it loaded the stream (else the guest would run nowhere); for exec: let the command finish.
      int fd = channel->fd.get();
      bool socket = isSocket(fd);
      (void)::shutdown(fd, SHUT_WR);
      if (socket) result = awaitLoadedAck(fd, manager.cancelled(), kAckTimeout);
      if (result) result = channel->file.commit(fd);
      channel->fd.reset();
      if (result) result = channel->child.wait();
      // Downtime ends when the destination has the guest (its ack), not when the last byte left.
      if (result && sender.stoppedAt()) {
        manager.update([&](MigrationInfo& info) { info.downtime_ms = msSince(*sender.stoppedAt()); });
      }
    }
  }
  if (!result && !manager.cancelled().load()) log::warning("migration failed: " + result.error().message());
  // The run state changes first (postmigrate, or running again), then the status: a client that
  // sees the final status also sees the final run state.
  MigrationStatus final_status = result ? MigrationStatus::Completed : manager.cancelled().load() ? MigrationStatus::Cancelled : MigrationStatus::Failed;
  std::string error = result ? "" : result.error().message();
  manager.host().runOnLoop([&manager, final_status, error] {
    manager.host().outgoingEnded(final_status == MigrationStatus::Completed);
    manager.setStatus(final_status, error);
  });
}

}  // namespace vmmd::migration
