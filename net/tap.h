// The host end of a virtio-net device: a tap interface opened with IFF_VNET_HDR, so frames carry
// the virtio-net header (checksum and segmentation offload metadata) across unchanged.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd::net {

class Tap {
 public:
  static constexpr int kVnetHeaderSize = 12;  // struct virtio_net_hdr_v1 (virtio 1.x, num_buffers included)

  // Opens (creating, with CAP_NET_ADMIN) the tap interface `name`; empty: the kernel names it.
  static Result<Tap> open(const std::string& name);
  // Adopts a tap fd a parent opened for us (QEMU's -netdev tap,fd=N).
  static Result<Tap> adopt(int fd);

  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  // TUNSETOFFLOAD: which offloads the guest can receive (checksum, TSO4/6).
  Status setOffloads(bool csum, bool tso4, bool tso6, bool ecn);

 private:
  Tap(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  static Status configure(int fd);
  UniqueFd fd_;
  std::string name_;
};

// "52:54:00:12:34:56" -> bytes.
Result<std::array<uint8_t, 6>> parseMac(const std::string& text);

}  // namespace vmmd::net
