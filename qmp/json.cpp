#include "qmp/json.h"

#include <cinttypes>
#include <cstdio>

#include "qmp/json_stream_reader.h"
#include "qmp/utf8.h"

namespace vmmd::qmp {
namespace {

void appendHex4(std::string& out, unsigned cp) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\u%04X", cp & 0xFFFF);
  out += buf;
}

}  // namespace

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      // Copy the run of plain ASCII at once.
      size_t j = i + 1;
      while (j < s.size()) {
        auto d = static_cast<unsigned char>(s[j]);
        if (d < 0x20 || d >= 0x7F || d == '"' || d == '\\') break;
        ++j;
      }
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      default: break;
    }
    long decoded = decodeUtf8(s, i);
    if (decoded < 0) ++i;  // printed as U+FFFD, as QEMU does
    auto cp = static_cast<unsigned>(decoded < 0 ? 0xFFFD : decoded);
    if (cp > 0xFFFF) {
      cp -= 0x10000;
      appendHex4(out, 0xD800 + (cp >> 10));
      appendHex4(out, 0xDC00 + (cp & 0x3FF));
    } else {
      appendHex4(out, cp);
    }
  }
  out += '"';
}

void appendJson(std::string& out, const JsonValue& v) {
  char buf[32];
  switch (v.GetType()) {
    case rapidjson::kNullType: out += "null"; return;
    case rapidjson::kFalseType: out += "false"; return;
    case rapidjson::kTrueType: out += "true"; return;
    case rapidjson::kStringType:
      appendJsonString(out, std::string_view(v.GetString(), v.GetStringLength()));
      return;
    case rapidjson::kNumberType:
      if (v.IsInt64()) {
        std::snprintf(buf, sizeof buf, "%" PRId64, v.GetInt64());
      } else if (v.IsUint64()) {
        std::snprintf(buf, sizeof buf, "%" PRIu64, v.GetUint64());
      } else {
        std::snprintf(buf, sizeof buf, "%.17g", v.GetDouble());
      }
      out += buf;
      return;
    case rapidjson::kObjectType: {
      out += '{';
      bool first = true;
      for (const auto& m : v.GetObject()) {
        if (!first) out += ", ";
        first = false;
        appendJsonString(out, std::string_view(m.name.GetString(), m.name.GetStringLength()));
        out += ": ";
        appendJson(out, m.value);
      }
      out += '}';
      return;
    }
    case rapidjson::kArrayType: {
      out += '[';
      bool first = true;
      for (const auto& e : v.GetArray()) {
        if (!first) out += ", ";
        first = false;
        appendJson(out, e);
      }
      out += ']';
      return;
    }
  }
}

std::string toJson(const JsonValue& value) {
  std::string out;
  appendJson(out, value);
  return out;
}

bool jsonEqual(const JsonValue& a, const JsonValue& b) {
  if (a.IsNumber() && b.IsNumber()) {
    if (a.IsInt64() && b.IsInt64()) return a.GetInt64() == b.GetInt64();
    if (a.IsUint64() && b.IsUint64()) return a.GetUint64() == b.GetUint64();
    return a.GetDouble() == b.GetDouble();
  }
  if (a.GetType() != b.GetType()) return false;
  switch (a.GetType()) {
    case rapidjson::kStringType:
      return a.GetStringLength() == b.GetStringLength() &&
             std::string_view(a.GetString(), a.GetStringLength()) ==
                 std::string_view(b.GetString(), b.GetStringLength());
    case rapidjson::kArrayType: {
      if (a.Size() != b.Size()) return false;
      for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
        if (!jsonEqual(a[i], b[i])) return false;
      }
      return true;
    }
    case rapidjson::kObjectType: {
      if (a.MemberCount() != b.MemberCount()) return false;
      for (const auto& m : a.GetObject()) {
        auto it = b.FindMember(m.name);
        if (it == b.MemberEnd() || !jsonEqual(m.value, it->value)) return false;
      }
      return true;
    }
    default:
      return true;
  }
}

Result<Json> parseJson(std::string_view text) {
  std::optional<Result<Json>> first;
  JsonStreamReader reader([&](Result<Json>&& item) {
    if (!first) first.emplace(std::move(item));
  });
  reader.feed(text);
  reader.finish();
  if (!first) return Error("JSON parse error, premature EOI");
  return std::move(*first);
}

Json jsonObject() {
  Json d;
  d.SetObject();
  return d;
}

Json jsonArray() {
  Json d;
  d.SetArray();
  return d;
}

Json jsonCopy(const JsonValue& value) {
  Json d;
  d.CopyFrom(value, d.GetAllocator());
  return d;
}

}  // namespace vmmd::qmp
