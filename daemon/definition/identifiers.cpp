#include "daemon/definition/identifiers.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "base/unique_fd.h"

namespace vmmd::daemon {
namespace {

bool isHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Shapes: 'x' is one hex digit, anything else is that literal character.
constexpr std::string_view kUuidShape = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
constexpr std::string_view kMacShape = "xx:xx:xx:xx:xx:xx";

// Writes `bytes` into the 'x' positions of `shape`, two digits a byte, in lower case.
std::string formatHex(const uint8_t* bytes, std::string_view shape) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(shape);
  size_t nibble = 0;
  for (char& c : out) {
    if (c != 'x') continue;
    uint8_t byte = bytes[nibble / 2];
    c = kDigits[nibble % 2 == 0 ? byte >> 4 : byte & 0xf];
    ++nibble;
  }
  return out;
}

// `text` in lower case when it has exactly the form of `shape`.
std::optional<std::string> lowerIfShaped(std::string_view text, std::string_view shape) {
  if (text.size() != shape.size()) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (shape[i] == 'x' ? !isHex(text[i]) : text[i] != shape[i]) return std::nullopt;
    out += lower(text[i]);
  }
  return out;
}

}  // namespace

Status validateVmName(std::string_view name) {
  if (name.empty()) return Error("must not be empty");
  if (name.size() > kMaxVmNameLength) {
    return Error("must be at most " + std::to_string(kMaxVmNameLength) + " characters");
  }
  if (name.front() == '.' || name.front() == '-') return Error("must not start with '.' or '-'");
  for (char c : name) {
    if (!isAlpha(c) && !isDigit(c) && c != '.' && c != '_' && c != '-') {
      return Error("may contain only letters, digits, '.', '_' and '-'");
    }
  }
  return {};
}

Status randomBytes(void* out, size_t size) {
  UniqueFd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::fromErrno("open /dev/urandom");
  auto* p = static_cast<uint8_t*>(out);
  while (size > 0) {
    ssize_t n = ::read(fd.get(), p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno("read /dev/urandom");
    if (n == 0) return Error("read /dev/urandom: unexpected end of file");
    p += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

Result<std::string> generateUuid() {
  std::array<uint8_t, 16> b{};
  if (auto st = randomBytes(b.data(), b.size()); !st) return st.error().withContext("generate uuid");
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return formatHex(b.data(), kUuidShape);
}

Result<std::string> canonicalUuid(std::string_view text) {
  auto uuid = lowerIfShaped(text, kUuidShape);
  if (!uuid) return Error("must be a UUID like 3f2504e0-4f89-41d3-9a0c-0305e82c3301");
  return std::move(*uuid);
}

Result<std::string> generateMac() {
  std::array<uint8_t, 6> b = {0x52, 0x54, 0x00, 0, 0, 0};
  if (auto st = randomBytes(b.data() + 3, 3); !st) return st.error().withContext("generate mac");
  return formatHex(b.data(), kMacShape);
}

Result<std::string> canonicalMac(std::string_view text) {
  auto shaped = lowerIfShaped(text, kMacShape);
  if (!shaped) return Error("must be a MAC address like 52:54:00:12:34:56");
  const std::string& out = *shaped;
  if (out == "00:00:00:00:00:00") return Error("must not be all zero");
  unsigned first = 0;
  std::sscanf(out.c_str(), "%2x", &first);
  if (first & 1) return Error("must be a unicast address (the low bit of the first byte clear)");
  return out;
}

Status validateDeviceId(std::string_view id) {
  if (id.empty()) return Error("must not be empty");
  if (id.size() > 32) return Error("must be at most 32 characters");
  if (!isAlpha(id.front())) return Error("must start with a letter");
  for (char c : id) {
    if (!isAlpha(c) && !isDigit(c) && c != '-' && c != '.' && c != '_') {
      return Error("may contain only letters, digits, '-', '.' and '_'");
    }
  }
  return {};
}

Status validateIfname(std::string_view ifname) {
  if (ifname.empty()) return Error("must not be empty");
  if (ifname.size() > 15) return Error("must be at most 15 characters (IFNAMSIZ)");
  if (ifname == "." || ifname == "..") return Error("must not be '.' or '..'");
  for (char c : ifname) {
    // ',' would need QEMU's ",," escaping and no interface tool accepts it anyway; ':' marks an alias.
    if (c == '/' || c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
        static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return Error("must be a network interface name (printable ASCII without '/', ',', ':' or spaces)");
    }
  }
  return {};
}

}  // namespace vmmd::daemon
