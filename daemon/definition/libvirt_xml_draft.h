// The JSON definition that a domain XML import builds, with the XML path each field came from.
// The import fills it and hands its text to parseDefinition, so XML and JSON definitions share one
// validation; the errors that come back name JSON fields ("disks[1].id: ...") and translate()
// names the XML instead ("/domain/metadata/vmmd:settings/vmmd:disk[2]/@id: ..."). Internal.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace vmmd::daemon::xml {

class Draft;

// One JSON object of the draft: the definition itself, one disk, one NIC or the restart backoff.
class DraftObject {
 public:
  // `pointer`: the object's JSON Pointer in the draft ("" for the top, "/disks/0"); `prefix`: its
  // field name as parseDefinition writes it, with a trailing dot ("disks[0].").
  DraftObject(Draft& draft, std::string pointer, std::string prefix)
      : draft_(draft), pointer_(std::move(pointer)), prefix_(std::move(prefix)) {}

  void set(std::string_view key, std::string_view value, std::string xml_path);
  void set(std::string_view key, int64_t value, std::string xml_path);
  void set(std::string_view key, bool value, std::string xml_path);
  void set(std::string_view key, const std::vector<std::string>& values, std::string xml_path);
  // A nested object ("restart_backoff").
  DraftObject object(std::string_view key, std::string xml_path);
  // A field this object does not set but parseDefinition may complain about ("kernel: required").
  void expect(std::string_view key, std::string xml_path);

 private:
  void add(std::string_view key, rapidjson::Value value, std::string xml_path);

  Draft& draft_;
  std::string pointer_;  // objects are found again by pointer: adding members moves them
  std::string prefix_;
};

class Draft {
 public:
  Draft();

  DraftObject top() { return DraftObject(*this, "", ""); }
  // Appends an object to the array `key` ("disks", "nics") for the XML element at `xml_path`.
  DraftObject append(std::string_view key, std::string xml_path);

  // The JSON text for parseDefinition.
  std::string text() const;
  // parseDefinition's message with JSON field names replaced by the XML paths they came from.
  Error translate(const Error& json_error) const;

 private:
  friend class DraftObject;
  void mapField(std::string json_field, std::string xml_path);

  rapidjson::Document doc_;
  std::vector<std::pair<std::string, std::string>> paths_;  // JSON field → XML path
};

}  // namespace vmmd::daemon::xml
