// qemu-ga's guest-network-get-interfaces answer → the guest's IPv4 address per MAC; a hostile
// guest's answer is read as far as it makes sense and never fails.
#include "daemon/supervisor/guest_addresses.h"

#include <gtest/gtest.h>

namespace vmmd::daemon {
namespace {

std::map<std::string, std::string> fromText(const std::string& text) {
  auto json = qmp::parseJson(text);
  EXPECT_TRUE(json.ok()) << text;
  return json.ok() ? ipv4ByMac(*json) : std::map<std::string, std::string>{};
}

TEST(GuestAddresses, FirstIpv4OfEachInterfaceByMac) {
  // As qemu-ga 7.2 answers (with statistics left out).
  auto map = fromText(R"([
    {"name": "lo", "hardware-address": "00:00:00:00:00:00",
     "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]},
    {"name": "eth0", "hardware-address": "52:54:00:AB:cd:01",
     "ip-addresses": [{"ip-address-type": "ipv6", "ip-address": "fe80::5054:ff:feab:cd01", "prefix": 64},
                      {"ip-address-type": "ipv4", "ip-address": "192.168.124.17", "prefix": 24},
                      {"ip-address-type": "ipv4", "ip-address": "10.0.0.2", "prefix": 8}]},
    {"name": "eth1", "hardware-address": "52:54:00:ab:cd:02"}])");
  EXPECT_EQ(map, (std::map<std::string, std::string>{{"52:54:00:ab:cd:01", "192.168.124.17"}}));
}

TEST(GuestAddresses, HostileAnswersAreSkippedNotTrusted) {
  EXPECT_TRUE(fromText(R"({"not": "an array"})").empty());
  EXPECT_TRUE(fromText(R"([5, "x", {"hardware-address": 7}, {"hardware-address": "zz"}])").empty());
  auto map = fromText(R"([{"hardware-address": "52:54:00:00:00:01", "ip-addresses": [
      {"ip-address-type": "ipv4", "ip-address": "999.1.1.1"}, {"ip-address-type": "ipv4", "ip-address": "1.2.3.4; rm"},
      {"ip-address-type": "ipv4", "ip-address": "127.0.0.2"}, {"ip-address-type": "ipv4", "ip-address": "10.1.2.3"}]},
      {"hardware-address": "52:54:00:00:00:02", "ip-addresses": "none"}])");
  EXPECT_EQ(map, (std::map<std::string, std::string>{{"52:54:00:00:00:01", "10.1.2.3"}}));
  // A guest claiming thousands of interfaces is read up to the bound.
  std::string many = "[";
  for (int i = 0; i < 1000; ++i) {
    char mac[32];
    std::snprintf(mac, sizeof mac, "52:54:00:00:%02x:%02x", i / 256, i % 256);
    many += std::string(i ? "," : "") + R"({"hardware-address": ")" + mac +
            R"(", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.0.1"}]})";
  }
  EXPECT_EQ(fromText(many + "]").size(), kMaxGuestInterfaces);
}

}  // namespace
}  // namespace vmmd::daemon
