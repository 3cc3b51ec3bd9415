// The guest's IPv4 addresses as qemu-ga's guest-network-get-interfaces reports them:
//   [{"name": "eth0", "hardware-address": "52:54:00:12:34:56",
//     "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "192.168.124.5", "prefix": 24}, ...]}, ...]
// The guest is not trusted: anything malformed is skipped, never an error, and the result is bounded.
#pragma once

#include <map>
#include <string>

#include "qmp/json.h"

namespace vmmd::daemon {

// At most this many interfaces are read from one answer (a guest may claim thousands).
inline constexpr size_t kMaxGuestInterfaces = 64;

// Lower-case MAC -> the interface's first IPv4 address (loopback and interfaces without a MAC or an
// IPv4 address left out).
std::map<std::string, std::string> ipv4ByMac(const qmp::JsonValue& interfaces);

}  // namespace vmmd::daemon
