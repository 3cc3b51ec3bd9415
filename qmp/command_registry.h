// The table of QMP commands a server offers: each entry carries its argument schema, its
// introspection return type, its flags and its handler, so that argument checking (with QEMU's
// error wording), `query-commands` and `query-qmp-schema` all come from this one table.
//
// The worker builds one registry with QEMU's commands, the daemon one with its `vm-*` commands;
// the registry already holds `qmp_capabilities`, `query-commands` and `query-qmp-schema`.
//
//   registry.addObject("StatusInfo", {{"running", "bool"}, {"singlestep", "bool"}, {"status", "RunState"}});
//   registry.addSync({"query-status", {}, "StatusInfo"}, [&](const JsonValue&, Session&) -> CommandResult {...});
//   registry.add({"vm-qmp", {{"name", ArgType::Str}, {"command", ArgType::Object}}, "any"},
//                [&](Request& req) { forwardLater(std::move(req.reply)); });   // deferred reply
//
// Handlers run on the session's (loop) thread. `Request::args` lives only during the call:
// copy what a deferred handler keeps. A Reply may be completed later, or never (destroying an
// uncompleted Reply answers the client with an error); completing it after the client left is
// a harmless no-op.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "qmp/json.h"

namespace vmmd::qmp {

class Session;

namespace detail {
struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
template <typename T>
using StringMap = std::unordered_map<std::string, T, TransparentHash, std::equal_to<>>;
}  // namespace detail

// A QMP error reply: {"error": {"class": errorClass, "desc": desc}}.
struct QmpError {
  std::string errorClass;  // GenericError, CommandNotFound, DeviceNotFound, KVMMissingCap, ...
  std::string desc;
  static QmpError generic(std::string desc) { return {"GenericError", std::move(desc)}; }
  // From the object under a reply's "error" key (missing parts: GenericError, empty desc).
  static QmpError fromJson(const JsonValue& error);
};

using CommandResult = std::variant<Json, QmpError>;

// The handle through which a command's answer reaches its client, now or later. Move-only.
class Reply {
 public:
  Reply() = default;
  Reply(Reply&& other) noexcept;
  Reply& operator=(Reply&& other) noexcept;
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  // An uncompleted reply answers GenericError "Command produced no reply".
  ~Reply();

  void success(const JsonValue& value);  // {"return": value}
  void success();                         // {"return": {}}
  void error(const QmpError& error);
  void complete(const CommandResult& result);
  // False once completed (or moved from).
  bool pending() const { return pending_; }
  // The request's id as JSON text ("" when it had none).
  const std::string& idJson() const { return idJson_; }

 private:
  friend class Session;
  Reply(std::weak_ptr<Session> session, std::string idJson, bool oob)
      : session_(std::move(session)), idJson_(std::move(idJson)), oob_(oob), pending_(true) {}
  void send(std::string message);

  std::weak_ptr<Session> session_;
  std::string idJson_;
  bool oob_ = false;
  bool pending_ = false;
};

struct Request {
  std::string_view command;
  const JsonValue& args;  // always an object; valid only during the handler call
  Session& session;
  Reply& reply;  // complete it now, or std::move it away and complete it later
};

using Handler = std::function<void(Request& request)>;
using SyncHandler = std::function<CommandResult(const JsonValue& args, Session& session)>;

enum class ArgType { Str, Int, Number, Bool, Object, Array, Any };

struct ArgSpec {
  std::string name;
  ArgType type;
  bool optional = false;
  // Introspection type; empty = the builtin for `type` ("str", "int", "number", "bool", "any",
  // "[any]"). A registered enum here also restricts the values ("[Enum]" for arrays of it).
  std::string schemaType = {};
};

enum CommandFlag : unsigned {
  kAllowedBeforeNegotiation = 1u << 0,  // like qmp_capabilities
  kAllowOob = 1u << 1,                  // may be sent with "exec-oob"
};

struct CommandSpec {
  std::string name;
  std::vector<ArgSpec> args = {};
  std::string returns = {};  // introspection type of the return value; empty = {} (QEMU's "0")
  unsigned flags = 0;
};

// Members of introspected object types and events: type is a builtin (str, int, number, bool,
// any, null), a registered enum/object name, or "[T]".
struct MemberSpec {
  std::string name;
  std::string type;
  bool optional = false;
};

class CommandRegistry {
 public:
  struct Command {
    CommandSpec spec;
    Handler handler;
  };

  CommandRegistry();
  CommandRegistry(const CommandRegistry&) = delete;
  CommandRegistry& operator=(const CommandRegistry&) = delete;

  // Replaces an entry of the same name.
  void add(CommandSpec spec, Handler handler);
  void addSync(CommandSpec spec, SyncHandler handler);
  void addEnum(std::string name, std::vector<std::string> values);
  void addObject(std::string name, std::vector<MemberSpec> members);
  void addEvent(std::string name, std::vector<MemberSpec> data = {});

  const Command* find(std::string_view name) const;
  // QEMU's checks, in its order: each declared argument missing or mistyped, then unexpected ones.
  std::optional<QmpError> checkArguments(const Command& command, const JsonValue& args) const;

  Json queryCommands() const;  // [{"name": ...}, ...]
  Json querySchema() const;    // SchemaInfo list with masked type names, as QEMU

 private:
  std::vector<Command> commands_;
  detail::StringMap<size_t> byName_;
  detail::StringMap<std::vector<std::string>> enums_;
  std::vector<std::pair<std::string, std::vector<MemberSpec>>> objects_;
  std::vector<std::pair<std::string, std::vector<MemberSpec>>> events_;
};

}  // namespace vmmd::qmp
