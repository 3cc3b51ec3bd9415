#include "daemon/network/ipv4.h"

#include <arpa/inet.h>

#include <algorithm>

namespace vmmd::daemon {

std::optional<uint32_t> parseIpv4(std::string_view text) {
  // inet_pton takes exactly four decimal parts, no leading zeros, no trailing bytes.
  if (text.size() > 15) return std::nullopt;
  std::string copy(text);
  in_addr addr{};
  if (::inet_pton(AF_INET, copy.c_str(), &addr) != 1) return std::nullopt;
  return ntohl(addr.s_addr);
}

std::string formatIpv4(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xff) + "." +
         std::to_string((address >> 8) & 0xff) + "." + std::to_string(address & 0xff);
}

Ipv4Subnet Ipv4Subnet::of(uint32_t address, int prefix) {
  Ipv4Subnet subnet{0, prefix};
  subnet.network = address & subnet.mask();
  return subnet;
}

bool Ipv4Subnet::overlaps(const Ipv4Subnet& other) const {
  // Two prefixes overlap exactly when the shorter one contains the other's network.
  const Ipv4Subnet& wider = prefix <= other.prefix ? *this : other;
  const Ipv4Subnet& narrower = prefix <= other.prefix ? other : *this;
  return wider.contains(narrower.network);
}

}  // namespace vmmd::daemon
