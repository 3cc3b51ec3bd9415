#include "daemon/definition/json_object_reader.h"

#include <climits>
#include <limits>
#include <vector>

#include "qmp/utf8.h"

namespace vmmd::daemon {
namespace {

std::string_view keyOf(const rapidjson::Value& name) { return {name.GetString(), name.GetStringLength()}; }

}  // namespace

Error JsonObjectReader::fieldError(std::string_view key, std::string_view message) const {
  return Error(field(key) + ": " + std::string(message));
}

Status JsonObjectReader::checkKeys(std::initializer_list<std::string_view> known) const {
  std::vector<std::string_view> seen;
  for (auto it = object_.MemberBegin(); it != object_.MemberEnd(); ++it) {
    std::string_view key = keyOf(it->name);
    bool is_known = false;
    for (std::string_view k : known) is_known = is_known || k == key;
    // The key goes into the message; one with control bytes is not echoed verbatim.
    if (!is_known) {
      bool printable = key.find('\0') == std::string_view::npos && key.size() <= 64;
      return printable ? fieldError(key, "unknown field") : Error(prefix_ + "<unprintable key>: unknown field");
    }
    for (std::string_view s : seen) {
      if (s == key) return fieldError(key, "duplicate field");
    }
    seen.push_back(key);
  }
  return {};
}

const rapidjson::Value* JsonObjectReader::find(std::string_view key) const {
  auto it = object_.FindMember(rapidjson::Value(rapidjson::StringRef(key.data(), key.size())));
  if (it == object_.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

Result<std::optional<std::string>> JsonObjectReader::optionalString(std::string_view key) const {
  const rapidjson::Value* v = find(key);
  if (!v) return std::optional<std::string>();
  if (!v->IsString()) return fieldError(key, "must be a string");
  std::string text(v->GetString(), v->GetStringLength());
  // The value ends up in an argv or a path, where a NUL would silently cut it short.
  if (text.find('\0') != std::string::npos) return fieldError(key, "must not contain NUL bytes");
  // RapidJSON decodes a lone "\uDC00" escape into bytes that are not UTF-8 (its encoding check
  // sees only the raw input): such a value would not survive being written back and read again.
  for (size_t i = 0; i < text.size();) {
    long cp = qmp::decodeUtf8(text, i);
    if (cp <= 0 || !qmp::isValidCodePoint(cp)) return fieldError(key, "is not valid UTF-8 (a lone surrogate or a noncharacter)");
  }
  return std::optional<std::string>(std::move(text));
}

Result<std::string> JsonObjectReader::requiredString(std::string_view key) const {
  auto value = optionalString(key);
  if (!value) return value.error();
  if (!*value) return fieldError(key, "required");
  return std::move(**value);
}

Result<std::optional<std::string>> JsonObjectReader::optionalPath(std::string_view key) const {
  auto value = optionalString(key);
  if (!value || !*value) return value;
  const std::string& path = **value;
  if (path.empty() || path.front() != '/') return fieldError(key, "must be an absolute path");
  if (path.size() >= PATH_MAX) return fieldError(key, "must be shorter than " + std::to_string(PATH_MAX) + " bytes");
  return value;
}

Result<std::string> JsonObjectReader::requiredPath(std::string_view key) const {
  auto value = optionalPath(key);
  if (!value) return value.error();
  if (!*value) return fieldError(key, "required");
  return std::move(**value);
}

Result<std::optional<bool>> JsonObjectReader::optionalBool(std::string_view key) const {
  const rapidjson::Value* v = find(key);
  if (!v) return std::optional<bool>();
  if (!v->IsBool()) return fieldError(key, "must be true or false");
  return std::optional<bool>(v->GetBool());
}

Result<std::optional<int64_t>> JsonObjectReader::optionalInteger(std::string_view key, int64_t min, int64_t max,
                                                                std::string_view range_message) const {
  const rapidjson::Value* v = find(key);
  if (!v) return std::optional<int64_t>();
  int64_t value = 0;
  if (v->IsInt64()) {
    value = v->GetInt64();
  } else if (v->IsUint64()) {
    value = std::numeric_limits<int64_t>::max();  // beyond any range we accept
  } else {
    return fieldError(key, "must be an integer");
  }
  if (value < min || value > max) return fieldError(key, range_message);
  return std::optional<int64_t>(value);
}

Result<int64_t> JsonObjectReader::requiredInteger(std::string_view key, int64_t min, int64_t max,
                                                  std::string_view range_message) const {
  auto value = optionalInteger(key, min, max, range_message);
  if (!value) return value.error();
  if (!*value) return fieldError(key, "required");
  return **value;
}

}  // namespace vmmd::daemon
