// Network definitions, subnets, dnsmasq's files and the nftables rules: pure functions.
#include <gtest/gtest.h>

#include "daemon/network/dnsmasq_config.h"
#include "daemon/network/ipv4.h"
#include "daemon/network/nat_rules.h"
#include "daemon/network/network_host.h"
#include "daemon/network/network_definition.h"

namespace vmmd::daemon {
namespace {

constexpr const char* kNat = R"({"name": "default", "mode": "nat", "bridge": "vmmdbr0", "domain": "vm.internal",
  "ipv4": {"address": "192.168.124.1", "prefix": 24, "dhcp": {"start": "192.168.124.2", "end": "192.168.124.254"}}})";

std::string errorOf(const std::string& json) {
  auto def = parseNetworkDefinition(json);
  EXPECT_FALSE(def.ok()) << json;
  return def.ok() ? "" : def.error().message();
}

TEST(Ipv4, ParsesAndFormatsDottedQuads) {
  EXPECT_EQ(parseIpv4("192.168.124.1"), 0xc0a87c01u);
  EXPECT_EQ(formatIpv4(0xc0a87c01u), "192.168.124.1");
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", "01.2.3.4x", "a.b.c.d"}) {
    EXPECT_FALSE(parseIpv4(bad)) << bad;
  }
}

TEST(Ipv4, SubnetsContainAndOverlap) {
  Ipv4Subnet a = Ipv4Subnet::of(*parseIpv4("10.50.7.9"), 16);
  EXPECT_EQ(a.text(), "10.50.0.0/16");
  EXPECT_EQ(formatIpv4(a.broadcast()), "10.50.255.255");
  EXPECT_TRUE(a.contains(*parseIpv4("10.50.200.1")));
  EXPECT_FALSE(a.contains(*parseIpv4("10.51.0.1")));
  Ipv4Subnet b = Ipv4Subnet::of(*parseIpv4("10.50.3.1"), 24);
  Ipv4Subnet c = Ipv4Subnet::of(*parseIpv4("10.51.3.1"), 24);
  EXPECT_TRUE(a.overlaps(b));
  EXPECT_TRUE(b.overlaps(a));
  EXPECT_FALSE(a.overlaps(c));
  EXPECT_FALSE(b.overlaps(c));
}

TEST(NetworkDefinition, ParsesAndSerializesCanonically) {
  auto def = parseNetworkDefinition(kNat);
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->mode, NetworkMode::kNat);
  EXPECT_EQ(def->ipv4->subnet().text(), "192.168.124.0/24");
  EXPECT_FALSE(def->autostart);
  std::string canonical = serializeNetworkDefinition(*def);
  EXPECT_EQ(canonical,
            R"({"name": "default", "mode": "nat", "bridge": "vmmdbr0", "ipv4": {"address": "192.168.124.1", "prefix": 24, )"
            R"("dhcp": {"start": "192.168.124.2", "end": "192.168.124.254"}}, "domain": "vm.internal", "autostart": false})");
  auto again = parseNetworkDefinition(canonical);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(serializeNetworkDefinition(*again), canonical);
}

TEST(NetworkDefinition, DefaultIsLibvirtsDefault) {
  NetworkDefinition def = defaultNetworkDefinition();
  EXPECT_EQ(serializeNetworkDefinition(def),
            R"({"name": "default", "mode": "nat", "bridge": "vmmdbr0", "ipv4": {"address": "192.168.124.1", "prefix": 24, )"
            R"("dhcp": {"start": "192.168.124.2", "end": "192.168.124.254"}}, "autostart": false})");
}

TEST(NetworkDefinition, ErrorsNameTheField) {
  // {definition, a fragment its error must hold}
  const std::pair<std::string, std::string> cases[] = {
      {"[1]", "JSON object"},
      {"{\"name\": ", "network definition"},
      {R"({"mode": "nat", "bridge": "b"})", "name"},
      {R"({"name": "a b", "mode": "nat", "bridge": "b"})", "name:"},
      {R"({"name": "a", "mode": "routed", "bridge": "b"})", "mode: 'routed'"},
      {R"({"name": "a", "mode": "nat", "bridge": "b"})", "ipv4: is required"},
      {R"({"name": "a", "mode": "bridge", "bridge": "b", "ipv4": {"address": "10.0.0.1", "prefix": 8}})", "ipv4: mode bridge"},
      {R"({"name": "a", "mode": "nat", "bridge": "b", "ipv4": {"address": "10.0.0.0", "prefix": 24}})",
       "ipv4.address: 10.0.0.0 is the network"},
      {R"({"name": "a", "mode": "nat", "bridge": "b", "ipv4": {"address": "127.0.0.1", "prefix": 24}})", "ipv4.address"},
      {R"({"name": "a", "mode": "nat", "bridge": "b", "ipv4": {"address": "10.0.0.1", "prefix": 31}})", "ipv4.prefix"},
      {R"({"name": "a", "mode": "nat", "bridge": "b",
           "ipv4": {"address": "10.0.0.1", "prefix": 24, "dhcp": {"start": "10.0.1.2", "end": "10.0.0.9"}}})",
       "ipv4.dhcp.start: 10.0.1.2 is not a host address of 10.0.0.0/24"},
      {R"({"name": "a", "mode": "nat", "bridge": "b",
           "ipv4": {"address": "10.0.0.1", "prefix": 24, "dhcp": {"start": "10.0.0.9", "end": "10.0.0.2"}}})",
       "ipv4.dhcp.end"},
      {R"({"name": "a", "mode": "nat", "bridge": "b",
           "ipv4": {"address": "10.0.0.5", "prefix": 24, "dhcp": {"start": "10.0.0.2", "end": "10.0.0.9"}}})",
       "bridge's address"},
      {R"({"name": "a", "mode": "nat", "bridge": "b", "ipv4": {"address": "10.0.0.1", "prefix": 24, "x": 1}})", "ipv4.x"},
      {R"({"name": "a", "mode": "nat", "bridge": "b/c", "ipv4": {"address": "10.0.0.1", "prefix": 24}})", "bridge"},
      {R"({"name": "a", "mode": "nat", "bridge": "b", "domain": "bad..domain", "ipv4": {"address": "10.0.0.1", "prefix": 24}})",
       "domain"},
      {R"({"name": "a", "mode": "nat", "bridge": "b", "autostart": "yes", "ipv4": {"address": "10.0.0.1", "prefix": 24}})",
       "autostart"},
  };
  for (const auto& [json, fragment] : cases) {
    EXPECT_NE(errorOf(json).find(fragment), std::string::npos) << json << " -> " << errorOf(json);
  }
}

TEST(NetworkDefinition, NamesAreShortAndPlain) {
  EXPECT_TRUE(validateNetworkName("default").ok());
  EXPECT_TRUE(validateNetworkName("lab_2-a").ok());
  for (const char* bad : {"", "-a", "_a", "a.b", "a/b", "a b", "a\nb", "abcdefghijabcdefghijabcdefghijabc"}) {
    EXPECT_FALSE(validateNetworkName(bad).ok()) << bad;
  }
}

TEST(NetworkDefinition, StaticLeasePoolIsTheRangeElseTheSubnet) {
  auto def = parseNetworkDefinition(R"({"name": "a", "mode": "isolated", "bridge": "b", "ipv4": {"address": "10.0.0.1", "prefix": 29}})");
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(formatIpv4(def->ipv4->poolStart()), "10.0.0.1");
  EXPECT_EQ(formatIpv4(def->ipv4->poolEnd()), "10.0.0.6");
}

TEST(DnsmasqConfig, UsesOnlyItsOwnFilesAndTheBridge) {
  auto def = parseNetworkDefinition(kNat);
  ASSERT_TRUE(def.ok());
  DnsmasqFiles files = dnsmasqFilesFor("/var/lib/vmmd", "default");
  EXPECT_EQ(files.conf, "/var/lib/vmmd/networks/default/dnsmasq.conf");
  EXPECT_EQ(dnsmasqArgs(files), (std::vector<std::string>{"--conf-file=/var/lib/vmmd/networks/default/dnsmasq.conf",
                                                          "--keep-in-foreground"}));
  std::string conf = dnsmasqConf(*def, files);
  for (const char* line : {"pid-file=/var/lib/vmmd/networks/default/dnsmasq.pid\n", "interface=vmmdbr0\n", "bind-interfaces\n",
                           "except-interface=lo\n", "strict-order\n", "domain=vm.internal\n", "local=/vm.internal/\n",
                           "dhcp-range=192.168.124.2,192.168.124.254,255.255.255.0,1h\n", "dhcp-authoritative\n",
                           "dhcp-leasefile=/var/lib/vmmd/networks/default/dnsmasq.leases\n",
                           "dhcp-hostsfile=/var/lib/vmmd/networks/default/dnsmasq.hosts\n"}) {
    EXPECT_NE(conf.find(line), std::string::npos) << line << " in\n" << conf;
  }
  EXPECT_EQ(conf.find("no-resolv"), std::string::npos);  // nat forwards DNS to the host's servers
  def->mode = NetworkMode::kIsolated;
  def->ipv4->dhcp_start.reset();
  def->ipv4->dhcp_end.reset();
  conf = dnsmasqConf(*def, files);
  EXPECT_NE(conf.find("no-resolv\n"), std::string::npos);
  EXPECT_NE(conf.find("dhcp-range=192.168.124.0,static,255.255.255.0,1h\n"), std::string::npos) << conf;
}

TEST(DnsmasqConfig, HostsFileNamesVmsThatAreDnsLabels) {
  std::vector<NetworkLease> leases = {{"default", "52:54:00:00:00:01", "web1", "192.168.124.10"},
                                      {"default", "52:54:00:00:00:02", "db.primary", "192.168.124.11"}};
  EXPECT_EQ(dnsmasqHostsFile(leases), "52:54:00:00:00:01,192.168.124.10,web1\n52:54:00:00:00:02,192.168.124.11\n");
}

TEST(DnsmasqConfig, ParsesTheLeaseFile) {
  auto leases = parseDnsmasqLeases(
      "1733400000 52:54:00:aa:00:01 192.168.124.57 client1 01:52:54:00:aa:00:01\n"
      "0 52:54:00:aa:00:02 192.168.124.58 * *\n"
      "duid 00:01:00:01:2c:aa\n"
      "garbage\n"
      "1733400000 52:54:00:aa:00:03 fe80::1 v6 *\n"
      "17x 52:54:00:aa:00:04 192.168.124.59 x *");
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(leases[0].expiry, 1733400000);
  EXPECT_EQ(leases[0].mac, "52:54:00:aa:00:01");
  EXPECT_EQ(leases[0].ipv4, "192.168.124.57");
  EXPECT_EQ(leases[0].hostname, "client1");
  EXPECT_EQ(leases[1].expiry, 0);
  EXPECT_EQ(leases[1].hostname, "");
  EXPECT_TRUE(parseDnsmasqLeases("").empty());
}

TEST(NatRules, NatMasqueradesTheSubnetAndIsolatedDropsForwarding) {
  auto def = parseNetworkDefinition(kNat);
  ASSERT_TRUE(def.ok());
  std::string nat = natRulesetCommands(*def);
  EXPECT_EQ(nat.rfind("table ip vmmd-default\ndelete table ip vmmd-default\ntable ip vmmd-default {\n", 0), 0u) << nat;
  EXPECT_NE(nat.find("ip saddr 192.168.124.0/24 ip daddr != { 192.168.124.0/24, 224.0.0.0/24, 255.255.255.255 } masquerade"),
            std::string::npos);
  EXPECT_NE(nat.find("iifname \"vmmdbr0\" ip saddr 192.168.124.0/24 accept"), std::string::npos);
  def->mode = NetworkMode::kIsolated;
  std::string isolated = natRulesetCommands(*def);
  EXPECT_EQ(isolated.find("masquerade"), std::string::npos);
  EXPECT_NE(isolated.find("iifname \"vmmdbr0\" drop\n    oifname \"vmmdbr0\" drop"), std::string::npos) << isolated;
  EXPECT_EQ(natRemoveCommands("lab"), "table ip vmmd-lab\ndelete table ip vmmd-lab\n");
}

TEST(NetworkHost, BridgeMacIsStablePerNetworkAndLocal) {
  EXPECT_EQ(bridgeMacFor("default"), bridgeMacFor("default"));
  EXPECT_NE(bridgeMacFor("default"), bridgeMacFor("lab"));
  EXPECT_EQ(bridgeMacFor("default").rfind("52:54:00:", 0), 0u);
  EXPECT_EQ(bridgeMacFor("default").size(), 17u);
}

}  // namespace
}  // namespace vmmd::daemon
