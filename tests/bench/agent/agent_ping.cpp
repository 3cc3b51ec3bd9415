// agent_ping SOCKET LABEL [COUNT] [WAIT_S]: the guest-ping round trip through qmp::AgentClient.
// Waits up to WAIT_S (default 120) for an agent to answer guest-sync-delimited on SOCKET (the
// guest is booting), sends 20 pings to warm up, then COUNT (default 500) timed ones, and prints
//   BENCH vmm=LABEL metric=ping n=COUNT mean_us=.. p50_us=.. p99_us=.. min_us=.. max_us=..
// Used in the nested tier by tests/bench/agent (same guest, vmm and QEMU in one L1 boot).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "qmp/agent_client.h"

using namespace std::chrono_literals;
using vmmd::qmp::AgentClient;
using Clock = std::chrono::steady_clock;

namespace {

std::optional<AgentClient> waitForAgent(const std::string& path, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    auto c = AgentClient::connect(path);
    if (c && c->sync(2s)) return std::move(*c);
    std::this_thread::sleep_for(200ms);
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: agent_ping SOCKET LABEL [COUNT] [WAIT_S]\n");
    return 2;
  }
  std::string path = argv[1], label = argv[2];
  int count = argc > 3 ? std::atoi(argv[3]) : 500;
  int wait_s = argc > 4 ? std::atoi(argv[4]) : 120;
  if (count <= 0) count = 500;
  auto client = waitForAgent(path, Clock::now() + std::chrono::seconds(wait_s));
  if (!client) {
    std::printf("BENCH vmm=%s metric=ping fail=no-agent-within-%ds\n", label.c_str(), wait_s);
    return 1;
  }
  for (int i = 0; i < 20; ++i) (void)client->execute("guest-ping", nullptr, 10s);
  std::vector<double> us;
  us.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    auto r = client->execute("guest-ping", nullptr, 10s);
    auto t1 = Clock::now();
    if (!r) {
      std::printf("BENCH vmm=%s metric=ping fail=%s\n", label.c_str(), r.error().message().c_str());
      return 1;
    }
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  double mean = std::accumulate(us.begin(), us.end(), 0.0) / static_cast<double>(us.size());
  auto pct = [&](double p) { return us[std::min(us.size() - 1, static_cast<size_t>(p * static_cast<double>(us.size())))]; };
  std::printf("BENCH vmm=%s metric=ping n=%d mean_us=%.0f p50_us=%.0f p99_us=%.0f min_us=%.0f max_us=%.0f\n",
              label.c_str(), count, mean, pct(0.5), pct(0.99), us.front(), us.back());
  return 0;
}
