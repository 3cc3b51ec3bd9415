#include "daemon/supervisor/guest_addresses.h"

#include <arpa/inet.h>

#include "daemon/definition/identifiers.h"

namespace vmmd::daemon {
namespace {

std::string stringMember(const qmp::JsonValue& object, const char* key) {
  auto it = object.FindMember(key);
  return it != object.MemberEnd() && it->value.IsString() ? std::string(qmp::jsonStringView(it->value)) : std::string();
}

// A dotted IPv4 address that is not loopback, as the guest wrote it; empty otherwise.
std::string usableIpv4(const qmp::JsonValue& address) {
  if (!address.IsObject() || stringMember(address, "ip-address-type") != "ipv4") return {};
  std::string text = stringMember(address, "ip-address");
  in_addr parsed{};
  if (::inet_pton(AF_INET, text.c_str(), &parsed) != 1) return {};
  if ((ntohl(parsed.s_addr) >> 24) == 127) return {};
  return text;
}

}  // namespace

std::map<std::string, std::string> ipv4ByMac(const qmp::JsonValue& interfaces) {
  std::map<std::string, std::string> out;
  if (!interfaces.IsArray()) return out;
  size_t seen = 0;
  for (const qmp::JsonValue& interface : interfaces.GetArray()) {
    if (++seen > kMaxGuestInterfaces) break;
    if (!interface.IsObject()) continue;
    auto mac = canonicalMac(stringMember(interface, "hardware-address"));
    if (!mac) continue;  // loopback ("00:00:00:00:00:00") and garbage alike
    auto addresses = interface.FindMember("ip-addresses");
    if (addresses == interface.MemberEnd() || !addresses->value.IsArray()) continue;
    for (const qmp::JsonValue& address : addresses->value.GetArray()) {
      std::string ipv4 = usableIpv4(address);
      if (ipv4.empty()) continue;
      out.emplace(*mac, ipv4);
      break;
    }
  }
  return out;
}

}  // namespace vmmd::daemon
