// Reads the members of one JSON object with field-naming errors: knows its path ("disks[1]."),
// rejects unknown and duplicate keys, and reports wrong types ("memory: must be an integer").
// Internal to the definition parser.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vmmd::daemon {

class JsonObjectReader {
 public:
  // `prefix` is the path of this object followed by '.', or empty for the top level.
  JsonObjectReader(const rapidjson::Value& object, std::string prefix)
      : object_(object), prefix_(std::move(prefix)) {}

  // Fails on the first key that is not in `known` or that appears twice.
  Status checkKeys(std::initializer_list<std::string_view> known) const;

  // The full name of a field for messages: "disks[1].format".
  std::string field(std::string_view key) const { return prefix_ + std::string(key); }
  Error fieldError(std::string_view key, std::string_view message) const;

  // nullptr when absent or JSON null.
  const rapidjson::Value* find(std::string_view key) const;

  Result<std::optional<std::string>> optionalString(std::string_view key) const;
  Result<std::string> requiredString(std::string_view key) const;
  // An absolute path without NUL bytes, at most PATH_MAX - 1 bytes.
  Result<std::optional<std::string>> optionalPath(std::string_view key) const;
  Result<std::string> requiredPath(std::string_view key) const;
  Result<std::optional<bool>> optionalBool(std::string_view key) const;
  // An integer in [min, max]; `range_message` is the complaint when it is outside.
  Result<std::optional<int64_t>> optionalInteger(std::string_view key, int64_t min, int64_t max,
                                                 std::string_view range_message) const;
  Result<int64_t> requiredInteger(std::string_view key, int64_t min, int64_t max, std::string_view range_message) const;

 private:
  const rapidjson::Value& object_;
  std::string prefix_;
};

}  // namespace vmmd::daemon
