#include "vmm/migration/incoming.h"

#include <poll.h>
#include <sys/socket.h>

#include <chrono>

#include "vmm/migration/stream_reader.h"

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
  auto channel = acceptSource(endpoint, manager.cancelled());
  if (!channel) return fail(channel.error());
  auto start = Clock::now();
  manager.setStatus(MigrationStatus::Active);

  std::vector<RamRegion> regions;
  for (const auto& region : host.machine().memory().regions()) regions.push_back({region.guest_address, region.size, region.host});
  FdSource source(channel->fd.get(), manager.cancelled());
  auto loaded = StreamLoader(source, MachineSummary::of(host.config()), regions).load();
  if (!loaded) return fail(loaded.error());
  if (auto st = channel->child.wait(); !st) return fail(st.error());
  uint64_t bytes = loaded->bytes_read, pages = loaded->pages;
  manager.update([&](MigrationInfo& info) {
    info.ram.transferred = bytes;
    info.ram.total = host.machine().memory().ramBytes();
    info.ram.normal = pages;
    info.total_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
  });
  auto state = std::make_shared<MachineState>(std::move(loaded->machine));
  host.runOnLoop([&manager, state] {
    if (auto st = manager.host().incomingLoaded(*state); !st) {
      std::string why = "load of migration failed: " + st.error().message();
      manager.setStatus(MigrationStatus::Failed, why);
      manager.host().incomingFailed(why);
      return;
    }
    manager.setStatus(MigrationStatus::Completed);
  });
}

}  // namespace vmmd::migration
