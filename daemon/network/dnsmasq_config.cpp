#include "daemon/network/dnsmasq_config.h"

#include <cctype>
#include <charconv>
#include <sstream>

namespace vmmd::daemon {

DnsmasqFiles dnsmasqFilesFor(const std::string& state_dir, const std::string& network) {
  std::string dir = state_dir + "/networks/" + network;
  return {dir, dir + "/dnsmasq.conf", dir + "/dnsmasq.pid", dir + "/dnsmasq.leases", dir + "/dnsmasq.hosts",
          dir + "/dnsmasq.log"};
}

std::string dnsmasqConf(const NetworkDefinition& def, const DnsmasqFiles& files) {
  const NetworkIpv4& ipv4 = *def.ipv4;
  Ipv4Subnet subnet = ipv4.subnet();
  std::ostringstream out;
  out << "# vmmd's dnsmasq for network '" << def.name << "'; written at each start, do not edit\n"
      << "pid-file=" << files.pid << "\n"
      // Only the bridge, bound to it alone, so another dnsmasq (the host's, another network's)
      // can serve its own interfaces; never the loopback.
      << "interface=" << def.bridge << "\n"
      << "bind-interfaces\n"
      << "except-interface=lo\n"
      << "strict-order\n"
      << "no-hosts\n"
      << "log-facility=-\n"
      // Root keeps reading the hosts file on SIGHUP: it lives in vmmd's private state dir.
      << "user=root\n";
  if (def.mode == NetworkMode::kIsolated) out << "no-resolv\n";
  if (def.domain) {
    out << "domain=" << *def.domain << "\n"
        << "local=/" << *def.domain << "/\n"
        << "expand-hosts\n";
  }
  std::string mask = formatIpv4(subnet.mask());
  if (ipv4.dhcp_start && ipv4.dhcp_end) {
    out << "dhcp-range=" << formatIpv4(*ipv4.dhcp_start) << "," << formatIpv4(*ipv4.dhcp_end) << "," << mask << ",1h\n"
        << "dhcp-lease-max=" << (*ipv4.dhcp_end - *ipv4.dhcp_start + 1) << "\n";
  } else {
    out << "dhcp-range=" << formatIpv4(subnet.network) << ",static," << mask << ",1h\n";
  }
  out << "dhcp-no-override\n"
      << "dhcp-authoritative\n"
      << "dhcp-leasefile=" << files.leases << "\n"
      << "dhcp-hostsfile=" << files.hosts << "\n";
  return out.str();
}

std::string dnsmasqConfArg(const DnsmasqFiles& files) { return "--conf-file=" + files.conf; }

std::vector<std::string> dnsmasqArgs(const DnsmasqFiles& files) {
  // In the foreground: vmmd's child (its own session), so vmmd learns of its exit at once.
  return {dnsmasqConfArg(files), "--keep-in-foreground"};
}

bool isDnsLabel(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

std::string dnsmasqHostsFile(const std::vector<NetworkLease>& leases) {
  std::string out;
  for (const NetworkLease& lease : leases) {
    out += lease.mac + "," + lease.ipv4;
    if (isDnsLabel(lease.vm)) out += "," + lease.vm;
    out += "\n";
  }
  return out;
}

std::vector<DnsmasqLease> parseDnsmasqLeases(std::string_view text) {
  std::vector<DnsmasqLease> out;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string line(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    std::istringstream fields(line);
    std::string expiry, mac, ipv4, hostname;
    if (!(fields >> expiry >> mac >> ipv4 >> hostname)) continue;  // also dnsmasq's "duid ..." line
    DnsmasqLease lease;
    auto [ptr, ec] = std::from_chars(expiry.data(), expiry.data() + expiry.size(), lease.expiry);
    if (ec != std::errc() || ptr != expiry.data() + expiry.size()) continue;
    if (!parseIpv4(ipv4) || mac.size() != 17) continue;
    lease.mac = mac;
    lease.ipv4 = ipv4;
    lease.hostname = hostname == "*" ? "" : hostname;
    out.push_back(std::move(lease));
  }
  return out;
}

}  // namespace vmmd::daemon
