#include "daemon/definition/libvirt_xml_draft.h"

#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "daemon/definition/vm_definition.h"

namespace vmmd::daemon::xml {
namespace {

rapidjson::Value jsonString(std::string_view text, rapidjson::Document::AllocatorType& allocator) {
  return rapidjson::Value(text.data(), static_cast<rapidjson::SizeType>(text.size()), allocator);
}

bool endsField(const std::string& message, size_t at) {
  return at >= message.size() || message[at] == ':' || message[at] == ' ' || message[at] == '.' || message[at] == ',';
}

}  // namespace

Draft::Draft() {
  doc_.SetObject();
  doc_.AddMember("schema", kDefinitionSchema, doc_.GetAllocator());
}

void Draft::mapField(std::string json_field, std::string xml_path) {
  paths_.emplace_back(std::move(json_field), std::move(xml_path));
}

DraftObject Draft::append(std::string_view key, std::string xml_path) {
  auto& allocator = doc_.GetAllocator();
  std::string name(key);
  if (!doc_.HasMember(name.c_str())) {
    doc_.AddMember(jsonString(key, allocator), rapidjson::Value(rapidjson::kArrayType), allocator);
  }
  rapidjson::Value& array = doc_[name.c_str()];
  std::string index = std::to_string(array.Size());
  array.PushBack(rapidjson::Value(rapidjson::kObjectType), allocator);
  std::string field = name + "[" + index + "]";
  mapField(field, std::move(xml_path));
  return DraftObject(*this, "/" + name + "/" + index, field + ".");
}

std::string Draft::text() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc_.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

Error Draft::translate(const Error& json_error) const {
  // Longest field first, so "disks[1].path" wins over "disks[1]".
  std::vector<std::pair<std::string, std::string>> fields = paths_;
  std::stable_sort(fields.begin(), fields.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::string message = json_error.message();
  // The field the message is about comes first: "memory: must be ≥ 16 MiB".
  size_t head = 0;
  for (const auto& [field, xml_path] : fields) {
    if (message.compare(0, field.size(), field) != 0 || message.compare(field.size(), 1, ":") != 0) continue;
    message.replace(0, field.size(), xml_path);
    head = xml_path.size();
    break;
  }
  // Other disks and NICs it mentions: "same file as disks[0]", "same as disks[0].id".
  for (const auto& [field, xml_path] : fields) {
    if (field.find('[') == std::string::npos) continue;
    size_t at = message.find(field, head);
    while (at != std::string::npos) {
      if (endsField(message, at + field.size())) {
        message.replace(at, field.size(), xml_path);
        at += xml_path.size();
      } else {
        at += field.size();
      }
      at = message.find(field, at);
    }
  }
  return Error(message);
}

void DraftObject::set(std::string_view key, std::string_view value, std::string xml_path) {
  add(key, jsonString(value, draft_.doc_.GetAllocator()), std::move(xml_path));
}

void DraftObject::set(std::string_view key, int64_t value, std::string xml_path) {
  add(key, rapidjson::Value(value), std::move(xml_path));
}

void DraftObject::set(std::string_view key, bool value, std::string xml_path) {
  add(key, rapidjson::Value(value), std::move(xml_path));
}

void DraftObject::set(std::string_view key, const std::vector<std::string>& values, std::string xml_path) {
  auto& allocator = draft_.doc_.GetAllocator();
  rapidjson::Value array(rapidjson::kArrayType);
  for (const std::string& value : values) array.PushBack(jsonString(value, allocator), allocator);
  add(key, std::move(array), std::move(xml_path));
}

DraftObject DraftObject::object(std::string_view key, std::string xml_path) {
  add(key, rapidjson::Value(rapidjson::kObjectType), std::move(xml_path));
  return DraftObject(draft_, pointer_ + "/" + std::string(key), prefix_ + std::string(key) + ".");
}

void DraftObject::expect(std::string_view key, std::string xml_path) {
  draft_.mapField(prefix_ + std::string(key), std::move(xml_path));
}

void DraftObject::add(std::string_view key, rapidjson::Value value, std::string xml_path) {
  auto& allocator = draft_.doc_.GetAllocator();
  draft_.mapField(prefix_ + std::string(key), std::move(xml_path));
  rapidjson::Value* object = rapidjson::Pointer(pointer_.c_str()).Get(draft_.doc_);
  object->AddMember(jsonString(key, allocator), std::move(value), allocator);
}

}  // namespace vmmd::daemon::xml
