#include "vmm/acpi/aml.h"

#include <algorithm>

namespace vmmd::acpi::aml {
namespace {

constexpr uint8_t kZeroOp = 0x00, kOneOp = 0x01, kNameOp = 0x08, kBytePrefix = 0x0A, kWordPrefix = 0x0B,
                  kDWordPrefix = 0x0C, kStringPrefix = 0x0D, kQWordPrefix = 0x0E, kScopeOp = 0x10,
                  kBufferOp = 0x11, kPackageOp = 0x12, kExtOpPrefix = 0x5B, kDeviceOp = 0x82,
                  kRootChar = 0x5C, kDualNamePrefix = 0x2E, kMultiNamePrefix = 0x2F, kMethodOp = 0x14,
                  kOpRegionOp = 0x80, kFieldOp = 0x81, kAndOp = 0x7B, kNotifyOp = 0x86, kIfOp = 0xA0;

void append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

void appendLittle(Bytes& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// Op PkgLength Body
Bytes wrapped(const Bytes& op, const Bytes& body) {
  Bytes out = op;
  append(out, pkgLength(body.size()));
  append(out, body);
  return out;
}

}  // namespace

Bytes pkgLength(size_t length) {
  // The encoded length includes the PkgLength bytes themselves.
  if (length + 1 < 0x40) return {static_cast<uint8_t>(length + 1)};
  for (int extra = 1; extra <= 3; ++extra) {
    size_t total = length + 1 + static_cast<size_t>(extra);
    if (total < (size_t{1} << (4 + 8 * extra))) {
      Bytes out;
      out.push_back(static_cast<uint8_t>((extra << 6) | (total & 0x0F)));
      for (int i = 0; i < extra; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
      return out;
    }
  }
  return {};  // > 256 MiB: never produced by this builder
}

Bytes nameString(const std::string& path) {
  Bytes out;
  std::string rest = path;
  if (!rest.empty() && rest[0] == '\\') {
    out.push_back(kRootChar);
    rest.erase(0, 1);
  }
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= rest.size() && !rest.empty()) {
    size_t dot = rest.find('.', start);
    std::string segment = rest.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    segment.resize(4, '_');
    segments.push_back(segment);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (segments.size() == 2) out.push_back(kDualNamePrefix);
  if (segments.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segments.size()));
  }
  if (segments.empty()) out.push_back(0x00);  // NullName
  for (const auto& segment : segments) out.insert(out.end(), segment.begin(), segment.end());
  return out;
}

Bytes integer(uint64_t value) {
  Bytes out;
  if (value == 0) return {kZeroOp};
  if (value == 1) return {kOneOp};
  if (value <= 0xFF) {
    out.push_back(kBytePrefix);
    appendLittle(out, value, 1);
  } else if (value <= 0xFFFF) {
    out.push_back(kWordPrefix);
    appendLittle(out, value, 2);
  } else if (value <= 0xFFFFFFFF) {
    out.push_back(kDWordPrefix);
    appendLittle(out, value, 4);
  } else {
    out.push_back(kQWordPrefix);
    appendLittle(out, value, 8);
  }
  return out;
}

Bytes string(const std::string& text) {
  // Sized once and filled in place (gcc 12 at -O3 misreads an insert after a one-byte start as
  // an out-of-bounds copy).
  Bytes out(text.size() + 2, 0);
  out.front() = kStringPrefix;
  std::copy(text.begin(), text.end(), out.begin() + 1);
  return out;
}

Bytes eisaId(const std::string& id) {
  // Three letters in 5 bits each, then four hex digits; stored big-endian in a DWORD.
  auto letter = [&](int i) { return static_cast<uint32_t>(id[static_cast<size_t>(i)] - '@') & 0x1F; };
  auto digit = [&](int i) {
    char c = id[static_cast<size_t>(i)];
    return static_cast<uint32_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  };
  uint32_t value = (letter(0) << 26) | (letter(1) << 21) | (letter(2) << 16) | (digit(3) << 12) | (digit(4) << 8) |
                   (digit(5) << 4) | digit(6);
  uint32_t swapped = __builtin_bswap32(value);
  Bytes out{kDWordPrefix};
  appendLittle(out, swapped, 4);
  return out;
}

Bytes name(const std::string& path, const Bytes& value) {
  Bytes out{kNameOp};
  append(out, nameString(path));
  append(out, value);
  return out;
}

Bytes package(const std::vector<Bytes>& elements) {
  Bytes body{static_cast<uint8_t>(elements.size())};
  for (const auto& element : elements) append(body, element);
  return wrapped({kPackageOp}, body);
}

Bytes scope(const std::string& path, const Bytes& body) {
  Bytes inner = nameString(path);
  append(inner, body);
  return wrapped({kScopeOp}, inner);
}

Bytes device(const std::string& path, const Bytes& body) {
  Bytes inner = nameString(path);
  append(inner, body);
  return wrapped({kExtOpPrefix, kDeviceOp}, inner);
}

Bytes resourceTemplate(const Bytes& descriptors) {
  Bytes data = descriptors;
  data.push_back(0x79);  // End Tag
  data.push_back(0x00);  // checksum 0: "treat as correct"
  Bytes body = integer(data.size());
  append(body, data);
  return wrapped({kBufferOp}, body);
}

Bytes ioPort(uint16_t base, uint8_t length) {
  return {0x47, 0x01, static_cast<uint8_t>(base), static_cast<uint8_t>(base >> 8), static_cast<uint8_t>(base),
          static_cast<uint8_t>(base >> 8), 0x01, length};
}

Bytes irq(uint8_t line) {
  uint16_t mask = static_cast<uint16_t>(1u << line);
  return {0x22, static_cast<uint8_t>(mask), static_cast<uint8_t>(mask >> 8)};
}

Bytes memory32Fixed(uint32_t base, uint32_t length) {
  Bytes out{0x86, 9, 0, 1 /* read-write */};
  appendLittle(out, base, 4);
  appendLittle(out, length, 4);
  return out;
}

namespace {

// Extended interrupt descriptor for one GSI. Flags: bit 0 consumer, bit 1 edge (clear: level),
// bit 2 active low (clear: high), bit 3 shared (clear: exclusive).
Bytes extendedInterrupt(uint32_t gsi, bool edge) {
  Bytes out{0x89, 6, 0, static_cast<uint8_t>(0x01 | (edge ? 0x02 : 0)), 1};
  appendLittle(out, gsi, 4);
  return out;
}

}  // namespace

Bytes levelInterrupt(uint32_t gsi) { return extendedInterrupt(gsi, false); }
Bytes edgeInterrupt(uint32_t gsi) { return extendedInterrupt(gsi, true); }

Bytes memoryRegister32(const std::string& region, const std::string& field, uint32_t base) {
  constexpr uint8_t kSystemMemory = 0x00;
  Bytes out{kExtOpPrefix, kOpRegionOp};
  append(out, nameString(region));
  out.push_back(kSystemMemory);
  append(out, integer(base));
  append(out, integer(4));
  // FieldFlags: AccessType DWordAcc (3), LockRule NoLock (bit 4 clear), UpdateRule WriteAsZeros (2 in bits 5-6).
  Bytes body = nameString(region);
  body.push_back(0x03 | (2u << 5));
  append(body, nameString(field));
  body.push_back(32);  // NamedField: NameSeg, then its width in bits (a PkgLength that does not count itself)
  append(out, wrapped({kExtOpPrefix, kFieldOp}, body));
  return out;
}

Bytes method(const std::string& path, uint8_t argc, const Bytes& body) {
  Bytes inner = nameString(path);
  inner.push_back(static_cast<uint8_t>(argc & 0x07));  // MethodFlags: ArgCount, NotSerialized, SyncLevel 0
  append(inner, body);
  return wrapped({kMethodOp}, inner);
}

Bytes notifyIfSet(const std::string& field, uint32_t mask, const std::string& target, uint8_t value) {
  Bytes predicate{kAndOp};
  append(predicate, nameString(field));
  append(predicate, integer(mask));
  predicate.push_back(kZeroOp);  // Target: NullName, the result is only tested
  Bytes notify{kNotifyOp};
  append(notify, nameString(target));
  append(notify, integer(value));
  Bytes body = predicate;
  append(body, notify);
  return wrapped({kIfOp}, body);
}

namespace {

// Large resource descriptor: tag, length, resource type, flags, then granularity/min/max/
// translation/length fields of `width` bytes (ACPI 6.4, 6.4.3.5).
Bytes addressSpace(uint8_t tag, uint8_t resource_type, uint8_t type_flags, uint64_t min, uint64_t max, int width) {
  constexpr uint8_t kMinFixed = 1u << 2, kMaxFixed = 1u << 3;
  Bytes out{tag};
  uint16_t length = static_cast<uint16_t>(3 + 5 * width);
  appendLittle(out, length, 2);
  out.push_back(resource_type);
  out.push_back(kMinFixed | kMaxFixed);  // producer, positive decode
  out.push_back(type_flags);
  appendLittle(out, 0, width);                // granularity
  appendLittle(out, min, width);
  appendLittle(out, max, width);
  appendLittle(out, 0, width);                // translation offset
  appendLittle(out, max - min + 1, width);    // length
  return out;
}

}  // namespace

Bytes wordBusNumber(uint16_t min, uint16_t max) { return addressSpace(0x88, 2, 0, min, max, 2); }
Bytes wordIo(uint16_t min, uint16_t max) { return addressSpace(0x88, 1, 3 /* entire range */, min, max, 2); }
Bytes dwordMemory(uint32_t min, uint32_t max) { return addressSpace(0x87, 0, 1 /* read-write, non-cacheable */, min, max, 4); }

}  // namespace vmmd::acpi::aml
