// A private network for virtio-net tests and benchmarks: the process moves into a fresh network
// namespace, a real tap device is made there and brought up, and a packet socket on the same
// interface plays the host side (it sees what the guest sends, and sends what the guest receives).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd::virtio::testing {

// Ethertype for local experiments (IEEE 802): no stack on the host answers or forwards it.
constexpr uint16_t kExperimentalEthertype = 0x88B5;
constexpr size_t kVnetHeaderBytes = 12;

// Moves the calling process (its only thread, so call it before starting any) into a new network
// namespace, once. The error says why not (not root, no /dev/net/tun): the caller skips.
inline Status enterFreshNetworkNamespace() {
  static bool entered = false;
  if (entered) return {};
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) return Error::fromErrno("/dev/net/tun");
  if (::unshare(CLONE_NEWNET) != 0) return Error::fromErrno("unshare(CLONE_NEWNET) (needs root)");
  entered = true;
  // No IPv6 on interfaces made from now on: its router solicitations and MLD reports would go out
  // of the tap and reach the device between the frames a test sends.
  for (const char* knob : {"/proc/sys/net/ipv6/conf/default/disable_ipv6", "/proc/sys/net/ipv6/conf/all/disable_ipv6"}) {
    UniqueFd fd(::open(knob, O_WRONLY | O_CLOEXEC));
    if (fd) (void)!::write(fd.get(), "1", 1);
  }
  return {};
}

inline Status setInterfaceUp(const std::string& name) {
  UniqueFd control(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!control) return Error::fromErrno("socket");
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(control.get(), SIOCGIFFLAGS, &request) < 0) return Error::fromErrno(name + ": SIOCGIFFLAGS");
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  if (::ioctl(control.get(), SIOCSIFFLAGS, &request) < 0) return Error::fromErrno(name + ": SIOCSIFFLAGS");
  return {};
}

// A packet socket bound to interface `name` that sees only frames of `ethertype`.
inline Result<UniqueFd> openPacketSocket(const std::string& name, uint16_t ethertype) {
  UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ethertype)));
  if (!fd) return Error::fromErrno("socket(AF_PACKET)");
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_protocol = htons(ethertype);
  address.sll_ifindex = static_cast<int>(::if_nametoindex(name.c_str()));
  if (address.sll_ifindex == 0) return Error::fromErrno(name);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) return Error::fromErrno("bind " + name);
  return fd;
}

// An Ethernet frame of `length` bytes (header included) from `source` to `destination` whose
// payload is a counting pattern starting at `seed`, so corruption anywhere shows.
inline std::vector<uint8_t> ethernetFrame(size_t length, uint16_t ethertype, uint8_t seed) {
  std::vector<uint8_t> frame(length);
  const uint8_t destination[6] = {0x02, 0, 0, 0, 0, 0x02}, source[6] = {0x02, 0, 0, 0, 0, 0x01};
  std::memcpy(frame.data(), destination, 6);
  std::memcpy(frame.data() + 6, source, 6);
  frame[12] = static_cast<uint8_t>(ethertype >> 8);
  frame[13] = static_cast<uint8_t>(ethertype);
  for (size_t i = 14; i < length; ++i) frame[i] = static_cast<uint8_t>(seed + i);
  return frame;
}

inline uint16_t internetChecksum(const uint8_t* data, size_t length, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < length; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (length & 1) sum += static_cast<uint32_t>(data[length - 1] << 8);
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// A virtio-net header (virtio 1.x, 5.1.6) followed by an IPv4/TCP frame carrying `payload`
// bytes that the host must segment (GSO TCPV4, MSS 1448) and checksum (NEEDS_CSUM): what a
// guest with TSO sends.
inline std::vector<uint8_t> tsoFrame(size_t payload) {
  constexpr size_t kEth = 14, kIp = 20, kTcp = 20;
  std::vector<uint8_t> out(kVnetHeaderBytes + kEth + kIp + kTcp + payload);
  uint8_t* h = out.data();
  auto put16 = [](uint8_t* at, uint16_t v) { std::memcpy(at, &v, 2); };  // little endian (virtio)
  auto putBe16 = [](uint8_t* at, uint16_t v) { at[0] = static_cast<uint8_t>(v >> 8); at[1] = static_cast<uint8_t>(v); };
  h[0] = 1;                                              // VIRTIO_NET_HDR_F_NEEDS_CSUM
  h[1] = 1;                                              // VIRTIO_NET_HDR_GSO_TCPV4
  put16(h + 2, kEth + kIp + kTcp);                       // hdr_len
  put16(h + 4, 1448);                                    // gso_size
  put16(h + 6, kEth + kIp);                              // csum_start
  put16(h + 8, 16);                                      // csum_offset: TCP checksum field
  auto eth = ethernetFrame(kEth + kIp + kTcp + payload, 0x0800, 0);
  std::memcpy(h + kVnetHeaderBytes, eth.data(), eth.size());
  uint8_t* ip = h + kVnetHeaderBytes + kEth;
  std::memset(ip, 0, kIp + kTcp);
  ip[0] = 0x45;
  putBe16(ip + 2, static_cast<uint16_t>(kIp + kTcp + payload));
  putBe16(ip + 6, 0x4000);  // DF
  ip[8] = 64;
  ip[9] = 6;  // TCP
  const uint8_t source[4] = {10, 0, 0, 2}, destination[4] = {10, 0, 0, 1};
  std::memcpy(ip + 12, source, 4);
  std::memcpy(ip + 16, destination, 4);
  putBe16(ip + 10, internetChecksum(ip, kIp));
  uint8_t* tcp = ip + kIp;
  putBe16(tcp, 40000);
  putBe16(tcp + 2, 5001);
  tcp[12] = 5 << 4;
  tcp[13] = 0x18;  // PSH ACK
  putBe16(tcp + 14, 65535);
  // With NEEDS_CSUM the field holds the pseudo-header sum, not yet complemented.
  uint8_t pseudo[12];
  std::memcpy(pseudo, source, 4);
  std::memcpy(pseudo + 4, destination, 4);
  pseudo[8] = 0;
  pseudo[9] = 6;
  putBe16(pseudo + 10, static_cast<uint16_t>(kTcp + payload));
  putBe16(tcp + 16, static_cast<uint16_t>(~internetChecksum(pseudo, sizeof pseudo)));
  return out;
}

}  // namespace vmmd::virtio::testing
