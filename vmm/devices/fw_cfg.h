// QEMU's firmware configuration device (fw_cfg, docs/specs/fw_cfg.rst in QEMU) on the PC's I/O
// ports: a 16-bit selector at 0x510, a byte-wide data port at 0x511, and the DMA address
// register at 0x514 (big-endian 64 bits; writing its low half at 0x518 starts a transfer). Items
// are read-only blobs chosen by a 16-bit key; named ones ("files") are listed in the file
// directory (key 0x19). SeaBIOS reads its whole configuration from here.
//
// DMA descriptors and buffers are guest addresses: every access goes through GuestMemory's
// bounds checks, a descriptor outside RAM is ignored and a bad buffer ends the transfer with
// the error bit, never a host access outside guest RAM.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/devices/device.h"
#include "vmm/devices/io_bus.h"
#include "vmm/platform/guest_memory.h"

namespace vmmd {

class FwCfg : public BusDevice, public Device {
 public:
  static constexpr uint16_t kPortBase = 0x510;
  static constexpr uint16_t kPortLength = 12;  // selector, data, (2 unused), DMA address high, low
  static constexpr uint16_t kSelectorOffset = 0, kDataOffset = 1, kDmaOffset = 4;

  // Well-known keys (QEMU's FW_CFG_*); files get keys from kFirstFileKey on.
  enum Key : uint16_t {
    kSignature = 0x00,
    kId = 0x01,
    kUuid = 0x02,
    kRamSize = 0x03,
    kNoGraphic = 0x04,
    kNbCpus = 0x05,
    kBootMenu = 0x0E,
    kMaxCpus = 0x0F,
    kFileDir = 0x19,
    kFirstFileKey = 0x20,
  };
  // FWCfgDmaAccess.control bits.
  static constexpr uint32_t kDmaError = 0x01, kDmaRead = 0x02, kDmaSkip = 0x04, kDmaSelect = 0x08, kDmaWrite = 0x10;
  static constexpr size_t kMaxFileName = 56;  // including the NUL

  explicit FwCfg(GuestMemory& memory);

  // Sets a numbered item (little-endian integers are the caller's business).
  void setItem(uint16_t key, std::vector<uint8_t> data);
  // Adds a named item to the file directory. Names are unique and shorter than 56 bytes.
  Status addFile(const std::string& name, std::vector<uint8_t> data);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  const char* name() const override { return "fw_cfg"; }
  // Selector, offset and DMA address back to 0; the items stay (they describe the machine).
  void reset() override;
  // Selector, data offset and the DMA address's written high half; the items are rebuilt from the
  // configuration, so only their count is in the state (a check that the machines match).
  Result<DeviceState> saveState() const override;
  Status loadState(const DeviceState& state) override;
  static constexpr uint32_t kStateVersion = 1;

 private:
  void select(uint16_t key);
  const std::vector<uint8_t>& current() const;
  void runDma(uint64_t descriptor_address);
  uint32_t transfer(uint32_t control, uint32_t length, uint64_t address);
  void rebuildFileDir();

  GuestMemory& memory_;
  std::map<uint16_t, std::vector<uint8_t>> items_;
  struct File {
    std::string name;
    uint16_t key;
  };
  std::vector<File> files_;
  uint16_t selected_ = kSignature;
  uint64_t offset_ = 0;
  uint64_t dma_address_ = 0;
};

}  // namespace vmmd
