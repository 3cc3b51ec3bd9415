#include "qmp/command_registry.h"

#include <map>
#include <set>

#include "qmp/session.h"

namespace vmmd::qmp {
namespace {

const char* builtinFor(ArgType type) {
  switch (type) {
    case ArgType::Str: return "str";
    case ArgType::Int: return "int";
    case ArgType::Number: return "number";
    case ArgType::Bool: return "bool";
    case ArgType::Object: return "any";
    case ArgType::Array: return "[any]";
    case ArgType::Any: return "any";
  }
  return "any";
}

// The JSON type name QEMU's input visitor puts in "expected: ...".
const char* expectedName(ArgType type) {
  switch (type) {
    case ArgType::Str: return "string";
    case ArgType::Int: return "integer";
    case ArgType::Number: return "number";
    case ArgType::Bool: return "boolean";
    case ArgType::Object: return "object";
    case ArgType::Array: return "array";
    case ArgType::Any: return "any";
  }
  return "any";
}

bool hasType(ArgType type, const JsonValue& v) {
  switch (type) {
    case ArgType::Str: return v.IsString();
    case ArgType::Int: return v.IsInt64();
    case ArgType::Number: return v.IsNumber();
    case ArgType::Bool: return v.IsBool();
    case ArgType::Object: return v.IsObject();
    case ArgType::Array: return v.IsArray();
    case ArgType::Any: return true;
  }
  return false;
}

// "json-type" of each builtin in query-qmp-schema.
const std::map<std::string, std::string, std::less<>>& builtins() {
  static const std::map<std::string, std::string, std::less<>> table = {
      {"str", "string"}, {"int", "int"}, {"number", "number"},
      {"bool", "boolean"}, {"any", "value"}, {"null", "null"},
  };
  return table;
}

// Builds query-qmp-schema: entities first (commands, events), then every type they reach, with
// non-builtin type names replaced by numbers in order of first use, as QEMU masks them.
class SchemaBuilder {
 public:
  SchemaBuilder(const detail::StringMap<std::vector<std::string>>& enums,
                const std::vector<std::pair<std::string, std::vector<MemberSpec>>>& objects)
      : enums_(enums), objects_(objects) {
    out_.SetArray();
    masked_[""] = "0";  // the empty object, QEMU's q_empty
    pendingTypes_.push_back({"", "0"});
    next_ = 1;
  }

  Json& doc() { return out_; }

  // A type reference by (unmasked) name; returns the masked name and schedules its entry.
  std::string ref(const std::string& name) {
    if (builtins().count(name)) {
      usedBuiltins_.emplace(name);
      return name;
    }
    auto it = masked_.find(name);
    if (it != masked_.end()) return it->second;
    std::string maskedName;
    if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
      maskedName = "[" + ref(name.substr(1, name.size() - 2)) + "]";
    } else {
      maskedName = std::to_string(next_++);
    }
    masked_[name] = maskedName;
    pendingTypes_.push_back({name, maskedName});
    return maskedName;
  }

  // An anonymous object type (the arguments of a command or the data of an event).
  std::string anonymousObject(const std::vector<MemberSpec>& members) {
    if (members.empty()) return "0";
    std::string maskedName = std::to_string(next_++);
    anonymous_.push_back({maskedName, members});
    pendingTypes_.push_back({"\x01" + std::to_string(anonymous_.size() - 1), maskedName});
    return maskedName;
  }

  void addEntry(JsonValue entry) { out_.PushBack(entry, out_.GetAllocator()); }

  JsonValue s(std::string_view text) { return jsonString(text, out_.GetAllocator()); }

  // Emits the entries of every type referenced so far (and those they reference), then builtins.
  void finish() {
    for (size_t i = 0; i < pendingTypes_.size(); ++i) {
      auto [name, maskedName] = pendingTypes_[i];
      emitType(name, maskedName);
    }
    auto& a = out_.GetAllocator();
    for (const auto& [name, jsonType] : builtins()) {
      if (!usedBuiltins_.count(name)) continue;
      JsonValue e(rapidjson::kObjectType);
      e.AddMember("name", s(name), a);
      e.AddMember("json-type", s(jsonType), a);
      e.AddMember("meta-type", "builtin", a);
      addEntry(std::move(e));
    }
  }

 private:
  JsonValue members(const std::vector<MemberSpec>& specs) {
    auto& a = out_.GetAllocator();
    JsonValue list(rapidjson::kArrayType);
    for (const auto& m : specs) {
      JsonValue e(rapidjson::kObjectType);
      e.AddMember("name", s(m.name), a);
      if (m.optional) e.AddMember("default", JsonValue(), a);
      std::string t = ref(m.type);
      e.AddMember("type", s(t), a);
      list.PushBack(e, a);
    }
    return list;
  }

  void emitType(const std::string& name, const std::string& maskedName) {
    auto& a = out_.GetAllocator();
    JsonValue e(rapidjson::kObjectType);
    e.AddMember("name", s(maskedName), a);
    if (name.empty()) {
      e.AddMember("members", JsonValue(rapidjson::kArrayType), a);
      e.AddMember("meta-type", "object", a);
    } else if (name[0] == '\x01') {
      e.AddMember("members", members(anonymous_[std::stoul(name.substr(1))].second), a);
      e.AddMember("meta-type", "object", a);
    } else if (name.front() == '[') {
      std::string element = ref(name.substr(1, name.size() - 2));
      e.AddMember("element-type", s(element), a);
      e.AddMember("meta-type", "array", a);
    } else if (auto en = enums_.find(name); en != enums_.end()) {
      JsonValue list(rapidjson::kArrayType);
      JsonValue values(rapidjson::kArrayType);
      for (const auto& v : en->second) {
        JsonValue m(rapidjson::kObjectType);
        m.AddMember("name", s(v), a);
        list.PushBack(m, a);
        values.PushBack(s(v), a);
      }
      e.AddMember("members", list, a);
      e.AddMember("meta-type", "enum", a);
      e.AddMember("values", values, a);
    } else {
      const std::vector<MemberSpec>* specs = nullptr;
      for (const auto& [objectName, objectMembers] : objects_) {
        if (objectName == name) specs = &objectMembers;
      }
      // An unknown name is introspected as an object without members rather than dropped, so
      // the schema stays self-consistent.
      e.AddMember("members", specs ? members(*specs) : JsonValue(rapidjson::kArrayType), a);
      e.AddMember("meta-type", "object", a);
    }
    addEntry(std::move(e));
  }

  const detail::StringMap<std::vector<std::string>>& enums_;
  const std::vector<std::pair<std::string, std::vector<MemberSpec>>>& objects_;
  Json out_;
  std::map<std::string, std::string> masked_;
  std::vector<std::pair<std::string, std::string>> pendingTypes_;
  std::vector<std::pair<std::string, std::vector<MemberSpec>>> anonymous_;
  std::set<std::string> usedBuiltins_;
  int next_ = 0;
};

}  // namespace

QmpError QmpError::fromJson(const JsonValue& error) {
  QmpError e{"GenericError", ""};
  if (!error.IsObject()) return e;
  if (auto c = error.FindMember("class"); c != error.MemberEnd() && c->value.IsString()) e.errorClass = jsonStringView(c->value);
  if (auto d = error.FindMember("desc"); d != error.MemberEnd() && d->value.IsString()) e.desc = jsonStringView(d->value);
  return e;
}

CommandRegistry::CommandRegistry() {
  addEnum("QMPCapability", {"oob"});
  add({"qmp_capabilities",
       {{"enable", ArgType::Array, true, "[QMPCapability]"}},
       "",
       kAllowedBeforeNegotiation},
      [](Request& request) {
        bool oob = false;
        if (auto it = request.args.FindMember("enable"); it != request.args.MemberEnd()) {
          for (const auto& capability : it->value.GetArray()) oob = oob || jsonStringView(capability) == "oob";
        }
        if (auto error = request.session.negotiate(oob)) {
          request.reply.error(*error);
        } else {
          request.reply.success();
        }
      });
  addObject("CommandInfo", {{"name", "str"}});
  addSync({"query-commands", {}, "[CommandInfo]"},
          [this](const JsonValue&, Session&) -> CommandResult { return queryCommands(); });
  addObject("SchemaInfo", {{"name", "str"}, {"meta-type", "str"}});
  addSync({"query-qmp-schema", {}, "[SchemaInfo]"},
          [this](const JsonValue&, Session&) -> CommandResult { return querySchema(); });
}

void CommandRegistry::add(CommandSpec spec, Handler handler) {
  auto it = byName_.find(spec.name);
  if (it != byName_.end()) {
    commands_[it->second] = Command{std::move(spec), std::move(handler)};
    return;
  }
  byName_.emplace(spec.name, commands_.size());
  commands_.push_back(Command{std::move(spec), std::move(handler)});
}

void CommandRegistry::addSync(CommandSpec spec, SyncHandler handler) {
  add(std::move(spec), [handler = std::move(handler)](Request& request) {
    request.reply.complete(handler(request.args, request.session));
  });
}

void CommandRegistry::addEnum(std::string name, std::vector<std::string> values) {
  enums_[std::move(name)] = std::move(values);
}

void CommandRegistry::addObject(std::string name, std::vector<MemberSpec> members) {
  for (auto& [existing, existingMembers] : objects_) {
    if (existing == name) {
      existingMembers = std::move(members);
      return;
    }
  }
  objects_.emplace_back(std::move(name), std::move(members));
}

void CommandRegistry::addEvent(std::string name, std::vector<MemberSpec> data) {
  events_.emplace_back(std::move(name), std::move(data));
}

const CommandRegistry::Command* CommandRegistry::find(std::string_view name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : &commands_[it->second];
}

std::optional<QmpError> CommandRegistry::checkArguments(const Command& command, const JsonValue& args) const {
  for (const ArgSpec& arg : command.spec.args) {
    auto it = args.FindMember(rapidjson::StringRef(arg.name.data(), arg.name.size()));
    if (it == args.MemberEnd()) {
      if (arg.optional) continue;
      return QmpError::generic("Parameter '" + arg.name + "' is missing");
    }
    const JsonValue& value = it->value;
    if (!hasType(arg.type, value)) {
      return QmpError::generic("Invalid parameter type for '" + arg.name + "', expected: " + expectedName(arg.type));
    }
    const std::string& schemaType = arg.schemaType;
    if (schemaType.empty()) continue;
    bool isArray = schemaType.size() > 2 && schemaType.front() == '[' && schemaType.back() == ']';
    std::string enumName = isArray ? schemaType.substr(1, schemaType.size() - 2) : schemaType;
    auto en = enums_.find(enumName);
    if (en == enums_.end()) continue;
    auto allowed = [&](const JsonValue& v) {
      for (const auto& name : en->second) {
        if (name == jsonStringView(v)) return true;
      }
      return false;
    };
    if (!isArray) {
      if (!value.IsString()) {
        return QmpError::generic("Invalid parameter type for '" + arg.name + "', expected: string");
      }
      if (!allowed(value)) {
        return QmpError::generic("Parameter '" + arg.name + "' does not accept value '" + std::string(jsonStringView(value)) + "'");
      }
      continue;
    }
    if (!value.IsArray()) continue;
    for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
      const JsonValue& element = value[i];
      if (!element.IsString()) {
        return QmpError::generic("Invalid parameter type for '" + arg.name + "[" + std::to_string(i) +
                                 "]', expected: string");
      }
      // QEMU 7.2 names a list element 'null' in this message.
      if (!allowed(element)) {
        return QmpError::generic("Parameter 'null' does not accept value '" + std::string(jsonStringView(element)) + "'");
      }
    }
  }
  for (const auto& member : args.GetObject()) {
    std::string_view name = jsonStringView(member.name);
    bool declared = false;
    for (const ArgSpec& arg : command.spec.args) declared = declared || arg.name == name;
    if (!declared) return QmpError::generic("Parameter '" + std::string(name) + "' is unexpected");
  }
  return std::nullopt;
}

Json CommandRegistry::queryCommands() const {
  Json out = jsonArray();
  auto& a = out.GetAllocator();
  for (const auto& c : commands_) {
    JsonValue e(rapidjson::kObjectType);
    e.AddMember("name", jsonString(c.spec.name, a), a);
    out.PushBack(e, a);
  }
  return out;
}

Json CommandRegistry::querySchema() const {
  SchemaBuilder b(enums_, objects_);
  auto& a = b.doc().GetAllocator();
  for (const auto& c : commands_) {
    std::vector<MemberSpec> args;
    for (const auto& arg : c.spec.args) {
      args.push_back({arg.name, arg.schemaType.empty() ? builtinFor(arg.type) : arg.schemaType, arg.optional});
    }
    JsonValue e(rapidjson::kObjectType);
    e.AddMember("name", b.s(c.spec.name), a);
    e.AddMember("ret-type", b.s(b.ref(c.spec.returns)), a);
    e.AddMember("meta-type", "command", a);
    e.AddMember("arg-type", b.s(b.anonymousObject(args)), a);
    if (c.spec.flags & kAllowOob) e.AddMember("allow-oob", true, a);
    b.addEntry(std::move(e));
  }
  for (const auto& [name, data] : events_) {
    JsonValue e(rapidjson::kObjectType);
    e.AddMember("name", b.s(name), a);
    e.AddMember("meta-type", "event", a);
    e.AddMember("arg-type", b.s(b.anonymousObject(data)), a);
    b.addEntry(std::move(e));
  }
  b.finish();
  return std::move(b.doc());
}

}  // namespace vmmd::qmp
