// agent_ping [--count N] [--rounds R] [--wait S] SOCKET=LABEL...: the guest-ping round trip
// through qmp::AgentClient, for several agents side by side. Waits up to S seconds (default 180)
// for every agent to answer guest-sync-delimited (the guests are booting), warms each up with 20
// pings, then runs R rounds (default 10); in each, every agent in turn gets N/R timed pings, so
// that a burst of load on the machine falls on all of them alike. Prints per agent
//   BENCH vmm=LABEL metric=ping n=N mean_us=.. p50_us=.. p99_us=.. min_us=.. max_us=..
// (or "BENCH vmm=LABEL metric=ping fail=WHY"). Used in the nested tier by tests/bench/agent.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "qmp/agent_client.h"

using namespace std::chrono_literals;
using vmmd::qmp::AgentClient;
using Clock = std::chrono::steady_clock;

namespace {

struct Agent {
  std::string socket, label;
  std::optional<AgentClient> client;
  std::vector<double> us;
  std::string failure;
};

void connectAll(std::vector<Agent>& agents, Clock::time_point deadline) {
  for (;;) {
    bool waiting = false;
    for (Agent& a : agents) {
      if (a.client) continue;
      auto c = AgentClient::connect(a.socket);
      if (c && c->sync(2s)) a.client.emplace(std::move(*c));
      else waiting = true;
    }
    if (!waiting || Clock::now() >= deadline) return;
    std::this_thread::sleep_for(200ms);
  }
}

void report(const Agent& a) {
  if (!a.failure.empty() || a.us.empty()) {
    std::printf("BENCH vmm=%s metric=ping fail=%s\n", a.label.c_str(), a.failure.empty() ? "no-samples" : a.failure.c_str());
    return;
  }
  std::vector<double> us = a.us;
  std::sort(us.begin(), us.end());
  double mean = std::accumulate(us.begin(), us.end(), 0.0) / static_cast<double>(us.size());
  auto pct = [&](double p) { return us[std::min(us.size() - 1, static_cast<size_t>(p * static_cast<double>(us.size())))]; };
  std::printf("BENCH vmm=%s metric=ping n=%zu mean_us=%.0f p50_us=%.0f p99_us=%.0f min_us=%.0f max_us=%.0f\n",
              a.label.c_str(), us.size(), mean, pct(0.5), pct(0.99), us.front(), us.back());
}

}  // namespace

int main(int argc, char** argv) {
  int count = 500, rounds = 10, wait_s = 180;
  std::vector<Agent> agents;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--count" || a == "--rounds" || a == "--wait") && i + 1 < argc) {
      int v = std::atoi(argv[++i]);
      (a == "--count" ? count : a == "--rounds" ? rounds : wait_s) = v;
    } else if (auto eq = a.find('='); eq != std::string::npos && eq > 0) {
      agents.push_back(Agent{a.substr(0, eq), a.substr(eq + 1), std::nullopt, {}, {}});
    } else {
      std::fprintf(stderr, "usage: agent_ping [--count N] [--rounds R] [--wait S] SOCKET=LABEL...\n");
      return 2;
    }
  }
  if (agents.empty() || count <= 0 || rounds <= 0 || count < rounds) {
    std::fprintf(stderr, "agent_ping: need SOCKET=LABEL arguments and 0 < rounds <= count\n");
    return 2;
  }
  connectAll(agents, Clock::now() + std::chrono::seconds(wait_s));
  for (Agent& a : agents) {
    if (!a.client) a.failure = "no-agent-within-" + std::to_string(wait_s) + "s";
    for (int i = 0; a.client && i < 20; ++i) (void)a.client->execute("guest-ping", nullptr, 10s);
  }
  for (int r = 0; r < rounds; ++r) {
    for (Agent& a : agents) {
      for (int i = 0; a.client && a.failure.empty() && i < count / rounds; ++i) {
        auto t0 = Clock::now();
        auto reply = a.client->execute("guest-ping", nullptr, 10s);
        auto t1 = Clock::now();
        if (!reply) a.failure = reply.error().message();
        else a.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
    }
  }
  bool ok = true;
  for (const Agent& a : agents) {
    report(a);
    ok = ok && a.failure.empty();
  }
  return ok ? 0 : 1;
}
