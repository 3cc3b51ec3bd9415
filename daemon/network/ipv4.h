// IPv4 addresses as host-order integers, subnets, and the checks network definitions need
// (an address inside a subnet, two subnets that overlap).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmmd::daemon {

// "192.168.124.1" -> 0xc0a87c01; nullopt for anything but a dotted quad.
std::optional<uint32_t> parseIpv4(std::string_view text);
std::string formatIpv4(uint32_t address);

struct Ipv4Subnet {
  uint32_t network = 0;  // the address with the host bits cleared
  int prefix = 0;

  static Ipv4Subnet of(uint32_t address, int prefix);
  uint32_t mask() const { return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix); }
  uint32_t broadcast() const { return network | ~mask(); }
  bool contains(uint32_t address) const { return (address & mask()) == network; }
  bool overlaps(const Ipv4Subnet& other) const;
  std::string text() const { return formatIpv4(network) + "/" + std::to_string(prefix); }
};

}  // namespace vmmd::daemon
