#include "qmp/command_registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "test_registry.h"

namespace vmmd::qmp {
namespace {

std::string check(const CommandRegistry& r, std::string_view command, std::string_view args) {
  Result<Json> parsed = parseJson(args);
  EXPECT_TRUE(parsed.ok());
  auto e = r.checkArguments(*r.find(command), *parsed);
  return e ? e->errorClass + ": " + e->desc : "ok";
}

TEST(CommandRegistry, QemuWordingForMissingUnexpectedAndMistyped) {
  testing::TestRegistry t;
  const auto& r = t.registry;
  EXPECT_EQ(check(r, "human-monitor-command", "{}"), "GenericError: Parameter 'command-line' is missing");
  // Missing is reported before unexpected, as QEMU visits declared members first.
  EXPECT_EQ(check(r, "human-monitor-command", R"({"b":1})"), "GenericError: Parameter 'command-line' is missing");
  EXPECT_EQ(check(r, "human-monitor-command", R"({"command-line":"x","b":1})"),
            "GenericError: Parameter 'b' is unexpected");
  EXPECT_EQ(check(r, "human-monitor-command", R"({"command-line":1})"),
            "GenericError: Invalid parameter type for 'command-line', expected: string");
  EXPECT_EQ(check(r, "human-monitor-command", R"({"command-line":"x","cpu-index":1.5})"),
            "GenericError: Invalid parameter type for 'cpu-index', expected: integer");
  EXPECT_EQ(check(r, "human-monitor-command", R"({"command-line":"x","cpu-index":99999999999999999999})"),
            "GenericError: Invalid parameter type for 'cpu-index', expected: integer");
  EXPECT_EQ(check(r, "human-monitor-command", R"({"command-line":"x","cpu-index":3})"), "ok");
  EXPECT_EQ(check(r, "typed", R"({"n":"1"})"), "GenericError: Invalid parameter type for 'n', expected: number");
  EXPECT_EQ(check(r, "typed", R"({"n":1})"), "ok");
  EXPECT_EQ(check(r, "typed", R"({"b":"true"})"), "GenericError: Invalid parameter type for 'b', expected: boolean");
  EXPECT_EQ(check(r, "typed", R"({"o":[]})"), "GenericError: Invalid parameter type for 'o', expected: object");
  EXPECT_EQ(check(r, "typed", R"({"a":{}})"), "GenericError: Invalid parameter type for 'a', expected: array");
  EXPECT_EQ(check(r, "typed", R"({"a":null})"), "GenericError: Invalid parameter type for 'a', expected: array");
  EXPECT_EQ(check(r, "typed", R"({"any":[{}]})"), "ok");
  EXPECT_EQ(check(r, "typed", R"({"state":"bad"})"), "GenericError: Parameter 'state' does not accept value 'bad'");
  EXPECT_EQ(check(r, "typed", R"({"state":"paused"})"), "ok");
}

TEST(CommandRegistry, CapabilityListIsCheckedAsQemu) {
  CommandRegistry r;
  EXPECT_EQ(check(r, "qmp_capabilities", R"({"enable":["foo"]})"),
            "GenericError: Parameter 'null' does not accept value 'foo'");
  EXPECT_EQ(check(r, "qmp_capabilities", R"({"enable":[1]})"),
            "GenericError: Invalid parameter type for 'enable[0]', expected: string");
  EXPECT_EQ(check(r, "qmp_capabilities", R"({"enable":"oob"})"),
            "GenericError: Invalid parameter type for 'enable', expected: array");
  EXPECT_EQ(check(r, "qmp_capabilities", R"({"enable":["oob"]})"), "ok");
}

TEST(CommandRegistry, QueryCommandsListsEveryRegisteredCommand) {
  testing::TestRegistry t;
  Json list = t.registry.queryCommands();
  std::vector<std::string> names;
  for (const auto& e : list.GetArray()) names.push_back(e["name"].GetString());
  for (const char* expected : {"qmp_capabilities", "query-commands", "query-qmp-schema", "query-status", "slow"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  }
}

TEST(CommandRegistry, SchemaUsesQemuIntrospectionFormat) {
  testing::TestRegistry t;
  Json schema = t.registry.querySchema();
  ASSERT_TRUE(schema.IsArray());
  std::map<std::string, const JsonValue*> byName;
  for (const auto& e : schema.GetArray()) byName[e["name"].GetString()] = &e;

  const JsonValue& qs = *byName.at("query-status");
  EXPECT_STREQ(qs["meta-type"].GetString(), "command");
  EXPECT_STREQ(qs["arg-type"].GetString(), "0");  // the empty object, as QEMU
  const JsonValue& ret = *byName.at(qs["ret-type"].GetString());
  EXPECT_STREQ(ret["meta-type"].GetString(), "object");
  ASSERT_EQ(ret["members"].Size(), 3u);
  EXPECT_STREQ(ret["members"][0]["name"].GetString(), "running");
  EXPECT_STREQ(ret["members"][0]["type"].GetString(), "bool");
  const JsonValue& runState = *byName.at(ret["members"][2]["type"].GetString());
  EXPECT_STREQ(runState["meta-type"].GetString(), "enum");
  EXPECT_EQ(toJson(runState["values"]), R"(["running", "paused", "prelaunch"])");
  // Names of non-builtin types are masked numbers.
  EXPECT_EQ(byName.count("StatusInfo"), 0u);
  EXPECT_EQ(byName.count("RunState"), 0u);

  const JsonValue& hmp = *byName.at("human-monitor-command");
  EXPECT_STREQ(hmp["ret-type"].GetString(), "str");
  const JsonValue& args = *byName.at(hmp["arg-type"].GetString());
  EXPECT_EQ(toJson(args["members"]), R"([{"name": "command-line", "type": "str"}, {"name": "cpu-index", "default": null, "type": "int"}])");

  const JsonValue& caps = *byName.at(byName.at("qmp_capabilities")->operator[]("arg-type").GetString());
  std::string enableType = caps["members"][0]["type"].GetString();
  EXPECT_EQ(enableType.front(), '[');
  EXPECT_STREQ((*byName.at(enableType))["meta-type"].GetString(), "array");

  EXPECT_TRUE(byName.at("slow")->HasMember("allow-oob"));
  EXPECT_STREQ((*byName.at("SHUTDOWN"))["meta-type"].GetString(), "event");
  EXPECT_STREQ((*byName.at("STOP"))["arg-type"].GetString(), "0");
  EXPECT_EQ(toJson(*byName.at("str")), R"({"name": "str", "json-type": "string", "meta-type": "builtin"})");
  EXPECT_EQ(toJson(*byName.at("bool")), R"({"name": "bool", "json-type": "boolean", "meta-type": "builtin"})");
  // Every referenced name has an entry.
  for (const auto& e : schema.GetArray()) {
    for (const char* key : {"arg-type", "ret-type", "element-type"}) {
      if (e.HasMember(key)) {
        EXPECT_EQ(byName.count(e[key].GetString()), 1u) << key << " of " << toJson(e);
      }
    }
  }
}

}  // namespace
}  // namespace vmmd::qmp
