#include "vmm/devices/fw_cfg.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace vmmd {
namespace {

constexpr std::array<uint8_t, 4> kSignatureBytes{'Q', 'E', 'M', 'U'};
constexpr std::array<uint8_t, 8> kDmaSignature{'Q', 'E', 'M', 'U', ' ', 'C', 'F', 'G'};  // read back at 0x514
constexpr uint32_t kIdTraditional = 1u << 0, kIdDma = 1u << 1;
constexpr size_t kDescriptorSize = 16;  // FWCfgDmaAccess: be32 control, be32 length, be64 address
constexpr size_t kFileDirEntrySize = 64;  // be32 size, be16 select, u16 reserved, char name[56]

uint64_t loadBigEndian(const uint8_t* bytes, size_t size) {
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value = value << 8 | bytes[i];
  return value;
}

void storeBigEndian(uint8_t* bytes, size_t size, uint64_t value) {
  for (size_t i = size; i-- > 0;) {
    bytes[i] = static_cast<uint8_t>(value);
    value >>= 8;
  }
}

const std::vector<uint8_t> kEmpty;

}  // namespace

FwCfg::FwCfg(GuestMemory& memory) : memory_(memory) {
  setItem(kSignature, {kSignatureBytes.begin(), kSignatureBytes.end()});
  uint32_t id = kIdTraditional | kIdDma;
  setItem(kId, {static_cast<uint8_t>(id), 0, 0, 0});
  rebuildFileDir();
}

void FwCfg::setItem(uint16_t key, std::vector<uint8_t> data) {
  auto guard = lock();
  items_[key] = std::move(data);
}

Status FwCfg::addFile(const std::string& name, std::vector<uint8_t> data) {
  auto guard = lock();
  if (name.empty() || name.size() >= kMaxFileName) return Error("fw_cfg: file name '" + name + "' must be 1-55 bytes");
  for (const auto& file : files_) {
    if (file.name == name) return Error("fw_cfg: file '" + name + "' added twice");
  }
  uint32_t key = kFirstFileKey + files_.size();
  if (key >= 0x4000) return Error("fw_cfg: too many files");  // 0x4000 is the write bit of a key
  files_.push_back({name, static_cast<uint16_t>(key)});
  items_[static_cast<uint16_t>(key)] = std::move(data);
  rebuildFileDir();
  return {};
}

void FwCfg::rebuildFileDir() {
  std::vector<uint8_t> dir(4 + files_.size() * kFileDirEntrySize, 0);
  storeBigEndian(dir.data(), 4, files_.size());
  for (size_t i = 0; i < files_.size(); ++i) {
    uint8_t* entry = dir.data() + 4 + i * kFileDirEntrySize;
    storeBigEndian(entry, 4, items_[files_[i].key].size());
    storeBigEndian(entry + 4, 2, files_[i].key);
    std::memcpy(entry + 8, files_[i].name.data(), files_[i].name.size());
  }
  items_[kFileDir] = std::move(dir);
}

void FwCfg::select(uint16_t key) {
  selected_ = key;
  offset_ = 0;
}

// An unknown key reads as an empty item (all zeros), as on QEMU.
const std::vector<uint8_t>& FwCfg::current() const {
  auto it = items_.find(selected_);
  return it == items_.end() ? kEmpty : it->second;
}

void FwCfg::read(uint64_t offset, std::span<uint8_t> data) {
  auto guard = lock();
  std::fill(data.begin(), data.end(), 0);
  if (offset == kDataOffset) {
    const auto& item = current();
    for (auto& byte : data) {
      if (offset_ < item.size()) byte = item[offset_++];
    }
    return;
  }
  if (offset >= kDmaOffset) {
    for (size_t i = 0; i < data.size() && offset + i < kPortLength; ++i) data[i] = kDmaSignature[offset - kDmaOffset + i];
  }
}

void FwCfg::write(uint64_t offset, std::span<const uint8_t> data) {
  auto guard = lock();
  if (offset == kSelectorOffset && data.size() == 2) {
    uint16_t key;
    std::memcpy(&key, data.data(), 2);  // a little-endian port write
    select(key);
    return;
  }
  // The DMA address arrives big-endian: the high half at 0x514, the low half at 0x518, which
  // starts the transfer (SeaBIOS writes only the low half; the high one stays 0).
  if (offset == kDmaOffset && data.size() == 4) {
    dma_address_ = (dma_address_ & 0xFFFFFFFFu) | loadBigEndian(data.data(), 4) << 32;
  } else if (offset == kDmaOffset + 4 && data.size() == 4) {
    uint64_t descriptor = (dma_address_ & ~uint64_t{0xFFFFFFFFu}) | loadBigEndian(data.data(), 4);
    dma_address_ = 0;
    runDma(descriptor);
  }
}

void FwCfg::runDma(uint64_t descriptor_address) {
  std::array<uint8_t, kDescriptorSize> descriptor;
  if (!memory_.read(descriptor_address, descriptor)) return;  // nowhere to report: ignored
  auto control = static_cast<uint32_t>(loadBigEndian(descriptor.data(), 4));
  auto length = static_cast<uint32_t>(loadBigEndian(descriptor.data() + 4, 4));
  uint64_t address = loadBigEndian(descriptor.data() + 8, 8);
  std::array<uint8_t, 4> result;
  storeBigEndian(result.data(), 4, transfer(control, length, address));
  (void)memory_.write(descriptor_address, result);
}

// One DMA operation; returns the control word written back: 0 when done, kDmaError when not.
uint32_t FwCfg::transfer(uint32_t control, uint32_t length, uint64_t address) {
  if (control & kDmaSelect) select(static_cast<uint16_t>(control >> 16));
  if (control & kDmaRead) {
    const auto& item = current();
    uint64_t available = offset_ < item.size() ? item.size() - offset_ : 0;
    uint64_t copied = std::min<uint64_t>(length, available);
    // Past the item's end the guest's buffer is zero-filled, as QEMU does.
    uint8_t* host = memory_.hostAddress(address, length);
    if (!host) return kDmaError;
    if (copied) std::memcpy(host, item.data() + offset_, copied);
    std::memset(host + copied, 0, length - copied);
    offset_ += copied;
    return 0;
  }
  if (control & kDmaWrite) return kDmaError;  // every item is read-only
  if (control & kDmaSkip) {
    offset_ = std::min<uint64_t>(offset_ + length, current().size());
    return 0;
  }
  return 0;
}

Result<DeviceState> FwCfg::saveState() const {
  auto guard = lock();
  StateWriter out;
  out.u32(static_cast<uint32_t>(items_.size()));
  out.u16(selected_);
  out.u64(offset_);
  out.u64(dma_address_);
  return DeviceState{name(), kStateVersion, out.take()};
}

Status FwCfg::loadState(const DeviceState& state) {
  if (auto st = checkState(state, name(), kStateVersion); !st) return st;
  StateReader in(state.bytes);
  uint32_t items = in.u32();
  uint16_t selected = in.u16();
  uint64_t offset = in.u64();
  uint64_t dma_address = in.u64();
  if (auto st = in.finish(name()); !st) return st;
  auto guard = lock();
  if (items != items_.size()) {
    return Error(std::string(name()) + ": the state is for " + std::to_string(items) + " items, this machine has " + std::to_string(items_.size()));
  }
  selected_ = selected;
  // An offset past the item reads as its end, as the data port does.
  offset_ = std::min<uint64_t>(offset, current().size());
  dma_address_ = dma_address;
  return {};
}

void FwCfg::reset() {
  auto guard = lock();
  select(kSignature);
  dma_address_ = 0;
}

}  // namespace vmmd
