// Validation and generation of the identifiers a definition carries: VM names, UUIDs, MAC
// addresses, disk ids and tap interface names. Validators return a message without the field name
// ("must be ..."); the caller prefixes the field.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace vmmd::daemon {

inline constexpr size_t kMaxVmNameLength = 64;

// [A-Za-z0-9._-], 1..64 characters, not starting with '.' or '-' (the name becomes a directory
// under the run dir and a -name argument, so no '/', ',' or a leading '-').
Status validateVmName(std::string_view name);

// RFC 4122 version 4 from /dev/urandom, lower-case canonical form.
Result<std::string> generateUuid();
// Accepts the 8-4-4-4-12 hex form in any case; returns it in lower case.
Result<std::string> canonicalUuid(std::string_view text);

// A random locally administered address with QEMU's 52:54:00 prefix.
Result<std::string> generateMac();
// Accepts "xx:xx:xx:xx:xx:xx" (hex, any case) that is unicast and not all zero; returns lower case.
Result<std::string> canonicalMac(std::string_view text);

// QEMU's id rule: a letter first, then letters, digits, '-', '.', '_'; at most 32 characters.
Status validateDeviceId(std::string_view id);
// A Linux interface name: 1..15 bytes, no '/', ',', ':', whitespace, not "." or "..".
Status validateIfname(std::string_view ifname);

// Fills `out` from /dev/urandom.
Status randomBytes(void* out, size_t size);

}  // namespace vmmd::daemon
