// The VM side of vmmd's networks: a tap per network NIC made at each launch and given back when
// the worker ends (or the launch fails), the definition-time check, the users query that keeps a
// network in use from being stopped, and the NICs' addresses for vm-list and vm-info.
#include <algorithm>

#include "base/log.h"
#include "daemon/supervisor/guest_addresses.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

constexpr int64_t kUs = 1000000;
// The agent is asked again when its last answer is older than this (and no question is open).
constexpr int64_t kAgentAddressRefreshUs = 5 * kUs;
// An answer older than this is not shown (the guest may have changed its addresses since).
constexpr int64_t kAgentAddressValidUs = 60 * kUs;
// A guest that does not answer at once has its addresses from the DHCP leases meanwhile.
constexpr AgentChannel::Duration kAgentAddressTimeout{2000};

std::string nicField(size_t index) { return "nics[" + std::to_string(index) + "]"; }

bool usesNetwork(const VmDefinition& def, const std::string& network) {
  return std::any_of(def.nics.begin(), def.nics.end(), [&](const NicSpec& nic) { return nic.network == network; });
}

}  // namespace

Status Supervisor::checkNetworks(const VmDefinition& def) const {
  for (size_t i = 0; i < def.nics.size(); ++i) {
    const NicSpec& nic = def.nics[i];
    if (!nic.onNetwork()) continue;
    if (!config_.networks) return Error(nicField(i) + ".network: this vmmd manages no networks");
    if (auto st = config_.networks->checkNetworkDefined(nic.network); !st) {
      return Error(nicField(i) + ".network: " + st.error().message());
    }
  }
  return {};
}

Result<NetworkTaps> Supervisor::attachNetworks(Vm& vm) {
  NetworkTaps taps;
  for (size_t i = 0; i < vm.def.nics.size(); ++i) {
    const NicSpec& nic = vm.def.nics[i];
    if (!nic.onNetwork()) continue;
    if (!config_.networks) return Error(nicField(i) + " (network " + nic.network + "): this vmmd manages no networks");
    auto attached = config_.networks->attachNic(nic.network, vm.name(), nic.mac);
    if (!attached) {
      // The taps made so far go with the fds in `taps`; detachNetworks removes what is left.
      return attached.error().withContext(nicField(i) + " (network " + nic.network + ")");
    }
    log::info(vmText(vm.name()) + ": " + nicField(i) + " " + nic.mac + " on network " + nic.network + ": tap " +
              attached->tap_name + " on bridge " + attached->bridge +
              (attached->ipv4.empty() ? "" : ", address " + attached->ipv4));
    vm.taps[i] = attached->tap_name;
    taps.emplace(i, std::move(attached->tap));
  }
  return taps;
}

void Supervisor::detachNetworks(Vm& vm) {
  if (!config_.networks) return;
  for (const auto& [index, tap] : std::exchange(vm.taps, {})) config_.networks->detachNic(tap);
}

std::vector<std::string> Supervisor::networkUsers(const std::string& network) const {
  std::vector<std::string> users;
  for (const auto& [name, vm] : vms_) {
    if (vm->process && !vm->process->exited() && usesNetwork(vm->def, network)) users.push_back(name);
  }
  return users;
}

void Supervisor::refreshAgentAddresses(Vm& vm) {
  if (!vm.def.agent || !vm.process || vm.def.nics.empty()) return;
  AgentAddresses& known = vm.agent_addresses;
  int64_t now = unixTimeUs();
  if (known.in_flight || now - known.asked_us < kAgentAddressRefreshUs) return;
  // No question to a guest that has closed the port: it would only wait for the sync.
  if (vm.agent && vm.agent->state() == AgentChannel::State::kDisconnected) return;
  if (!vm.agent && vm.origin == WorkerOrigin::kSpawned) return;  // the guest never opened it
  known.in_flight = true;
  known.asked_us = now;
  qmp::Json request = qmp::jsonObject();
  request.AddMember("execute", "guest-network-get-interfaces", request.GetAllocator());
  std::string name = vm.name();
  pid_t worker = vm.process->pid();
  // The VM may be gone (or started again) when the agent answers: found again by name and worker;
  // the supervisor too (vmmd exiting while a pool thread waits for the agent).
  agentOf(vm).submit(std::move(request), kAgentAddressTimeout, [this, alive = lifetime(), name, worker](Result<qmp::Json> reply) {
    if (alive.expired()) return;
    Vm* vm = active(name);
    if (!vm || !vm->process || vm->process->pid() != worker) return;
    vm->agent_addresses.in_flight = false;
    if (!reply || !reply->IsObject()) return;
    auto ret = reply->FindMember("return");
    if (ret == reply->MemberEnd()) return;  // an agent without the command: the leases stay the source
    vm->agent_addresses.ipv4_by_mac = ipv4ByMac(ret->value);
    vm->agent_addresses.answered_us = unixTimeUs();
  });
}

std::vector<NicAddress> Supervisor::nicAddresses(const VmDefinition& def, Vm* vm) {
  bool running = vm && vm->process && !vm->process->exited();
  const AgentAddresses* agent = nullptr;
  if (running) {
    refreshAgentAddresses(*vm);
    const AgentAddresses& known = vm->agent_addresses;
    if (known.answered_us && unixTimeUs() - known.answered_us < kAgentAddressValidUs) agent = &known;
  }
  std::vector<NicAddress> out;
  for (size_t i = 0; i < def.nics.size(); ++i) {
    const NicSpec& nic = def.nics[i];
    NicAddress row{nic.mac, nic.network, nic.ifname, std::nullopt, std::nullopt, std::nullopt};
    if (running) {
      if (auto tap = vm->taps.find(i); tap != vm->taps.end()) row.tap = tap->second;
      if (agent) {
        if (auto it = agent->ipv4_by_mac.find(nic.mac); it != agent->ipv4_by_mac.end()) {
          row.ipv4 = it->second;
          row.source = "agent";
        }
      }
      if (!row.ipv4 && nic.onNetwork() && config_.networks) {
        row.ipv4 = config_.networks->leasedAddress(nic.network, nic.mac);
        if (row.ipv4) row.source = "dhcp-lease";
      }
    }
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace vmmd::daemon
