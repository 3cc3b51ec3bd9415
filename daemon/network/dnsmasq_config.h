// Everything vmmd hands one network's dnsmasq: its own files under <state_dir>/networks/<name>/
// (never /etc/dnsmasq.conf nor the system's leases), the configuration text, the command line,
// the static leases (dhcp-hostsfile, re-read on SIGHUP) and the parsing of its lease file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/network/network_definition.h"
#include "daemon/store/records.h"

namespace vmmd::daemon {

struct DnsmasqFiles {
  std::string dir;     // <state_dir>/networks/<name>
  std::string conf;    // dnsmasq.conf
  std::string pid;     // dnsmasq.pid
  std::string leases;  // dnsmasq.leases
  std::string hosts;   // dnsmasq.hosts: MAC,address,hostname per VM NIC
  std::string log;     // dnsmasq.log: its stderr (--log-facility=-)
};
DnsmasqFiles dnsmasqFilesFor(const std::string& state_dir, const std::string& network);

// The configuration file's text for `def` (nat or isolated).
std::string dnsmasqConf(const NetworkDefinition& def, const DnsmasqFiles& files);
// argv after the program: --conf-file=<conf> --keep-in-foreground. The conf-file argument also
// identifies the process as this network's dnsmasq when vmmd re-adopts it.
std::vector<std::string> dnsmasqArgs(const DnsmasqFiles& files);
std::string dnsmasqConfArg(const DnsmasqFiles& files);

// dhcp-hostsfile lines "52:54:00:aa:bb:cc,192.168.124.10,web1" (the hostname only when the VM's
// name is a valid DNS label, which is how VMs find each other by name).
std::string dnsmasqHostsFile(const std::vector<NetworkLease>& leases);
bool isDnsLabel(std::string_view name);

// One line of dnsmasq's lease file: "<expiry> <mac> <ipv4> <hostname|*> <client-id|*>".
struct DnsmasqLease {
  int64_t expiry = 0;  // seconds since the epoch; 0: infinite
  std::string mac;
  std::string ipv4;
  std::string hostname;  // empty for '*'
};
// IPv4 leases only; malformed lines (a file being rewritten, a foreign line) are skipped.
std::vector<DnsmasqLease> parseDnsmasqLeases(std::string_view text);

}  // namespace vmmd::daemon
