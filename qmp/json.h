// JSON values for QMP, and their serialization exactly as QEMU 7.2 prints them.
//
// Values are RapidJSON documents (`Json` owns its allocator; `JsonValue` is a node inside one).
// `appendJson` writes QEMU's wire format: `{"a": 1, "b": [1, 2]}` (a space after ':' and ','),
// non-ASCII and control characters as uppercase `\uXXXX` escapes, doubles as `%.17g`.
// Every program (worker, daemon, CLI) builds replies and events with these helpers, e.g.
//   Json v = jsonObject(); v.AddMember("status", "running", v.GetAllocator());
#pragma once

#include <rapidjson/document.h>

// RapidJSON 1.1's member iterators define == and != in a way clang's C++20 mode calls
// ambiguous (the reversed candidate); harmless, and every loop over an object would trip it.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wambiguous-reversed-operator"
#endif

#include <string>
#include <string_view>

#include "base/result.h"

namespace vmmd::qmp {

using Json = rapidjson::Document;
using JsonValue = rapidjson::Value;

// QEMU's compact wire format (no trailing CRLF).
void appendJson(std::string& out, const JsonValue& value);
std::string toJson(const JsonValue& value);
// A JSON string literal with QEMU's escaping.
void appendJsonString(std::string& out, std::string_view utf8);

// Structural equality; integers and doubles compare by numeric value, member order is ignored.
bool jsonEqual(const JsonValue& a, const JsonValue& b);

// Parses exactly one JSON value with QEMU's grammar (accepts 'single-quoted' strings); the error
// text is QEMU's ("JSON parse error, ...").
Result<Json> parseJson(std::string_view text);

// Small builders.
Json jsonObject();
Json jsonArray();
Json jsonCopy(const JsonValue& value);
// The bytes of a string value (may contain NUL).
inline std::string_view jsonStringView(const JsonValue& v) { return {v.GetString(), v.GetStringLength()}; }
inline JsonValue jsonString(std::string_view s, Json::AllocatorType& alloc) {
  return JsonValue(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc);
}

}  // namespace vmmd::qmp
