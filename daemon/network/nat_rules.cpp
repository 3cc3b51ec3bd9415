#include "daemon/network/nat_rules.h"

namespace vmmd::daemon {

std::string natTableName(const std::string& network) { return "vmmd-" + network; }

std::string natRemoveCommands(const std::string& network) {
  // "table" first creates it when absent, so the delete never fails.
  std::string table = "ip " + natTableName(network);
  return "table " + table + "\ndelete table " + table + "\n";
}

std::string natRulesetCommands(const NetworkDefinition& def) {
  std::string subnet = def.ipv4->subnet().text();
  std::string bridge = "\"" + def.bridge + "\"";
  std::string out = natRemoveCommands(def.name);
  out += "table ip " + natTableName(def.name) + " {\n";
  if (def.mode == NetworkMode::kNat) {
    out += "  chain postrouting {\n"
           "    type nat hook postrouting priority srcnat; policy accept;\n"
           // Multicast and broadcast stay local, as libvirt leaves them.
           "    ip saddr " + subnet + " ip daddr != { " + subnet + ", 224.0.0.0/24, 255.255.255.255 } masquerade\n"
           "  }\n"
           "  chain forward {\n"
           "    type filter hook forward priority filter; policy accept;\n"
           "    iifname " + bridge + " ip saddr " + subnet + " accept\n"
           "    oifname " + bridge + " ip daddr " + subnet + " ct state established,related accept\n"
           "    iifname " + bridge + " drop\n"
           "    oifname " + bridge + " drop\n"
           "  }\n";
  } else {
    out += "  chain forward {\n"
           "    type filter hook forward priority filter; policy accept;\n"
           "    iifname " + bridge + " drop\n"
           "    oifname " + bridge + " drop\n"
           "  }\n";
  }
  out += "}\n";
  return out;
}

}  // namespace vmmd::daemon
