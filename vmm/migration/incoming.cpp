#include "vmm/migration/incoming.h"

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <future>
#include <unistd.h>

#include "base/log.h"
#include "vmm/migration/mapped_ram.h"
#include "vmm/migration/stream_reader.h"
#include "vmm/sandbox/sandbox.h"

namespace vmmd::migration {
namespace {

using Clock = std::chrono::steady_clock;

Result<Channel> acceptSource(IncomingEndpoint& endpoint, const std::atomic<bool>& cancel) {
  if (!endpoint.listener) return std::move(endpoint.stream);
  while (!cancel.load()) {
    pollfd p{endpoint.listener.get(), POLLIN, 0};
    int n = ::poll(&p, 1, 100);
    if (n < 0 && errno != EINTR) return Error::fromErrno("migration: poll");
    if (n <= 0) continue;
    int fd = ::accept4(endpoint.listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      return Error::fromErrno("migration: accept");
    }
    endpoint.listener.reset();  // one source per -incoming, as QEMU
    Channel channel;
    channel.fd = UniqueFd(fd);
    return channel;
  }
  return Error("cancelled");
}

}  // namespace

void runIncoming(MigrationManager& manager, IncomingEndpoint endpoint) {
  MigrationHost& host = manager.host();
  auto fail = [&](const Error& error) {
    std::string why = "load of migration failed: " + error.message();
    host.runOnLoop([&manager, why] {
      manager.setStatus(MigrationStatus::Failed, why);
      manager.host().incomingFailed(why);
    });
  };
  // Under -sandbox on the thread narrows the main loop's filter (inherited) to its own.
  if (auto st = sandbox::confineThread(sandbox::Role::Migration); !st) return fail(st.error());
  auto channel = acceptSource(endpoint, manager.cancelled());
  if (!channel) return fail(channel.error());
  auto start = Clock::now();
  manager.setStatus(MigrationStatus::Active);

  std::vector<RamRegion> regions;
  for (const auto& region : host.machine().memory().regions()) regions.push_back({region.guest_address, region.size, region.host});
  FdSource source(channel->fd.get(), manager.cancelled());
  // A regular file may be a mapped-ram stream: its RAM is then mapped, not read (the header says).
  MapRegion map;
  if (off_t base = ::lseek(channel->fd.get(), 0, SEEK_CUR); base >= 0) {
    int fd = channel->fd.get();
    map = [fd, base](const RamRegion& region, uint64_t data_offset) { return mapRegionFromFile(region, fd, static_cast<uint64_t>(base) + data_offset); };
  }
  auto loaded = StreamLoader(source, MachineSummary::of(host.config()), regions, std::move(map)).load();
  if (!loaded) return fail(loaded.error());
  if (auto st = channel->child.wait(); !st) return fail(st.error());
  uint64_t bytes = loaded->bytes_read, pages = loaded->pages;
  log::debug("migration: incoming stream loaded in " + std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()) +
             " us" + (loaded->mapped_ram ? " (mapped-ram: RAM mapped from the file, " + std::to_string(pages) + " pages with data)" : ""));
  manager.update([&](MigrationInfo& info) {
    info.ram.transferred = bytes;
    info.ram.total = host.machine().memory().ramBytes();
    info.ram.normal = pages;
    info.total_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
  });
  // The main loop applies the state and starts the guest; the result goes back to the source
  // as the ack (on a socket), so a source whose destination failed keeps its guest.
  auto state = std::make_shared<MachineState>(std::move(loaded->machine));
  auto applied = std::make_shared<std::promise<bool>>();
  auto done = applied->get_future();
  host.runOnLoop([&manager, state, applied, start] {
    if (auto st = manager.host().incomingLoaded(*state); !st) {
      std::string why = "load of migration failed: " + st.error().message();
      manager.setStatus(MigrationStatus::Failed, why);
      manager.host().incomingFailed(why);
      applied->set_value(false);
      return;
    }
    // The restore benchmark (tests/bench/migration/restore.py) reads this line under VMM_LOG=debug.
    log::debug("migration: incoming done (state applied, guest started unless -S) " +
               std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()) + " us after the source was accepted");
    manager.setStatus(MigrationStatus::Completed);
    applied->set_value(true);
  });
  while (done.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (manager.cancelled().load()) return;
  }
  if (done.get() && isSocket(channel->fd.get())) {
    uint8_t ack = kLoadedAck;
    (void)!::write(channel->fd.get(), &ack, 1);
  }
}

}  // namespace vmmd::migration
