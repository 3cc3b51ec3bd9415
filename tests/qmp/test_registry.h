// A small registry shared by the qmp tests: typed arguments, a deferred command, events.
#pragma once

#include <memory>
#include <vector>

#include "qmp/command_registry.h"
#include "qmp/session.h"

namespace vmmd::qmp::testing {

inline constexpr const char* kVersion =
    R"({"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"})";

struct TestRegistry {
  CommandRegistry registry;
  std::vector<Reply> deferred;  // replies held by "slow"

  TestRegistry() {
    registry.addEnum("RunState", {"running", "paused", "prelaunch"});
    registry.addObject("StatusInfo", {{"running", "bool"}, {"singlestep", "bool"}, {"status", "RunState"}});
    registry.addSync({"query-status", {}, "StatusInfo"}, [](const JsonValue&, Session&) -> CommandResult {
      Json r = jsonObject();
      auto& a = r.GetAllocator();
      r.AddMember("status", "prelaunch", a);
      r.AddMember("singlestep", false, a);
      r.AddMember("running", false, a);
      return r;
    });
    registry.addSync({"human-monitor-command",
                      {{"command-line", ArgType::Str}, {"cpu-index", ArgType::Int, true}},
                      "str"},
                     [](const JsonValue& args, Session&) -> CommandResult {
                       Json r;
                       r.SetString(args["command-line"].GetString(), r.GetAllocator());
                       return r;
                     });
    registry.addSync({"typed",
                      {{"s", ArgType::Str, true},
                       {"i", ArgType::Int, true},
                       {"n", ArgType::Number, true},
                       {"b", ArgType::Bool, true},
                       {"o", ArgType::Object, true},
                       {"a", ArgType::Array, true},
                       {"any", ArgType::Any, true},
                       {"state", ArgType::Str, true, "RunState"}}},
                     [](const JsonValue&, Session&) -> CommandResult { return jsonObject(); });
    registry.addSync({"fail", {}}, [](const JsonValue&, Session&) -> CommandResult {
      return QmpError{"DeviceNotFound", "Device 'x' not found"};
    });
    registry.add({"slow", {}, "", kAllowOob}, [this](Request& r) { deferred.push_back(std::move(r.reply)); });
    registry.add({"silent", {}}, [](Request&) {});
    registry.addSync({"ping", {}, "", kAllowOob}, [](const JsonValue&, Session&) -> CommandResult { return jsonObject(); });
    registry.addEvent("STOP");
    registry.addEvent("SHUTDOWN", {{"guest", "bool"}, {"reason", "str"}});
  }
};

}  // namespace vmmd::qmp::testing
