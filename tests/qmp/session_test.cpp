#include "qmp/session.h"

#include <gtest/gtest.h>

#include "test_registry.h"

namespace vmmd::qmp {
namespace {

constexpr const char* kGreeting =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian "
    "1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n";

struct SessionHarness {
  testing::TestRegistry t;
  std::string out;
  std::shared_ptr<Session> session =
      Session::create(t.registry, {testing::kVersion}, [this](std::string_view m) { out += m; });

  // Feeds `input` and returns what the session wrote in response.
  std::string send(std::string_view input) {
    out.clear();
    session->feed(input);
    return out;
  }
  void negotiate(std::string_view caps = R"({"execute":"qmp_capabilities"})") {
    session->start();
    ASSERT_EQ(send(caps), "{\"return\": {}}\r\n");
  }
};

// Expected lines below were recorded from qemu-system-x86_64 7.2 (Debian) byte for byte.
TEST(Session, GreetingIsQemus) {
  SessionHarness h;
  h.session->start();
  EXPECT_EQ(h.out, kGreeting);
}

TEST(Session, CommandsBeforeNegotiation) {
  SessionHarness h;
  h.session->start();
  EXPECT_EQ(h.send(R"({"execute":"query-status"})"),
            "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting capabilities negotiation with "
            "'qmp_capabilities'\"}}\r\n");
  EXPECT_EQ(h.send(R"({"execute":"query-status","id":5})"),
            "{\"id\": 5, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting capabilities negotiation "
            "with 'qmp_capabilities'\"}}\r\n");
  EXPECT_EQ(h.send(R"({"execute":"nope"})"),
            "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting capabilities negotiation with "
            "'qmp_capabilities'\"}}\r\n");
  EXPECT_EQ(h.send(R"({"execute":"qmp_capabilities","arguments":{"enable":["foo"]}})"),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'null' does not accept value "
            "'foo'\"}}\r\n");
  EXPECT_FALSE(h.session->negotiated());
  EXPECT_EQ(h.send(R"({"execute":"qmp_capabilities","id":[1,{"a":2}]})"), "{\"return\": {}, \"id\": [1, {\"a\": 2}]}\r\n");
  EXPECT_TRUE(h.session->negotiated());
  EXPECT_EQ(h.send(R"({"execute":"qmp_capabilities"})"),
            "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Capabilities negotiation is already complete, "
            "command ignored\"}}\r\n");
  EXPECT_EQ(h.send(R"({"execute":"query-status"})"),
            "{\"return\": {\"status\": \"prelaunch\", \"singlestep\": false, \"running\": false}}\r\n");
}

TEST(Session, RequestShapeErrorsAsQemu) {
  SessionHarness h;
  h.negotiate();
  auto generic = [](std::string_view desc, std::string_view id = "") {
    std::string s = "{";
    if (!id.empty()) s += "\"id\": " + std::string(id) + ", ";
    return s + "\"error\": {\"class\": \"GenericError\", \"desc\": \"" + std::string(desc) + "\"}}\r\n";
  };
  EXPECT_EQ(h.send("[1]"), generic("QMP input must be a JSON object"));
  EXPECT_EQ(h.send("\"x\""), generic("QMP input must be a JSON object"));
  EXPECT_EQ(h.send("}"), generic("JSON parse error, expecting value"));
  EXPECT_EQ(h.send(R"({"execute": 1})"), generic("QMP input member 'execute' must be a string"));
  EXPECT_EQ(h.send(R"({"foo":1})"), generic("QMP input member 'foo' is unexpected"));
  EXPECT_EQ(h.send("{}"), generic("QMP input lacks member 'execute'"));
  EXPECT_EQ(h.send(R"({"id":1})"), generic("QMP input lacks member 'execute'", "1"));
  EXPECT_EQ(h.send(R"({"execute":1,"id":"z"})"), generic("QMP input member 'execute' must be a string", "\"z\""));
  EXPECT_EQ(h.send(R"({"execute":"query-status","arguments":[]})"),
            generic("QMP input member 'arguments' must be an object"));
  EXPECT_EQ(h.send(R"({"execute":"query-status","arguments":{"a":1}})"), generic("Parameter 'a' is unexpected"));
  EXPECT_EQ(h.send(R"({"execute":"query-status","arguments":{"x":1},"id":1})"),
            generic("Parameter 'x' is unexpected", "1"));
  EXPECT_EQ(h.send(R"({"execute":"human-monitor-command","arguments":{},"id":1})"),
            generic("Parameter 'command-line' is missing", "1"));
  // exec-oob is an unknown member until oob is negotiated.
  EXPECT_EQ(h.send(R"({"exec-oob":"query-status"})"), generic("QMP input member 'exec-oob' is unexpected"));
  EXPECT_EQ(h.send(R"({"execute":"nope","id":"q"})"),
            "{\"id\": \"q\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not been "
            "found\"}}\r\n");
  EXPECT_EQ(h.send("{\"execute\":\"nope\xc3\xa9\"}"),
            "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope\\u00E9 has not been found\"}}\r\n");
  EXPECT_EQ(h.send(R"({"execute":"query-status","id":1,"id":2})"), generic("JSON parse error, duplicate key"));
  EXPECT_EQ(h.send("\xff"), generic("JSON parse error, stray '\\uFFFD'"));
  EXPECT_EQ(h.send(R"({"execute":"fail","id":7})"),
            "{\"id\": 7, \"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'x' not found\"}}\r\n");
}

TEST(Session, OneBadInputCanYieldSeveralErrorsAndTheSessionGoesOn) {
  SessionHarness h;
  h.negotiate();
  EXPECT_EQ(h.send("abc"), "");
  EXPECT_EQ(h.send(R"({"a":1}})"),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid keyword 'abc'\"}}\r\n"
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'a' is unexpected\"}}\r\n"
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, expecting value\"}}\r\n");
  EXPECT_EQ(h.send(R"({"execute":"query-status"}{"execute":"query-status"})"),
            "{\"return\": {\"status\": \"prelaunch\", \"singlestep\": false, \"running\": false}}\r\n"
            "{\"return\": {\"status\": \"prelaunch\", \"singlestep\": false, \"running\": false}}\r\n");
}

TEST(Session, IdOfAnyTypeIsEchoedVerbatim) {
  SessionHarness h;
  h.negotiate();
  for (std::string_view id : {"null", "\"s\"", "-3", "1.5", "true", "[]", "{\"a\": [1, {\"b\": null}]}"}) {
    std::string req = "{\"execute\": \"ping\", \"id\": " + std::string(id) + "}";
    EXPECT_EQ(h.send(req), "{\"return\": {}, \"id\": " + std::string(id) + "}\r\n");
  }
}

TEST(Session, EventsOnlyAfterNegotiation) {
  SessionHarness h;
  h.session->start();
  h.out.clear();
  h.session->sendEvent("STOP", nullptr);
  EXPECT_EQ(h.out, "");
  ASSERT_EQ(h.send(R"({"execute":"qmp_capabilities"})"), "{\"return\": {}}\r\n");
  h.out.clear();
  Json data = parseJson(R"({"guest": false, "reason": "host-qmp-quit"})").value();
  h.session->sendEvent("SHUTDOWN", &data);
  Json e = parseJson(h.out).value();
  ASSERT_TRUE(e.IsObject());
  EXPECT_EQ(h.out.substr(0, 26), "{\"timestamp\": {\"seconds\": ");
  EXPECT_NE(h.out.find("\"microseconds\": "), std::string::npos);
  EXPECT_NE(h.out.find("}, \"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}\r\n"),
            std::string::npos);
  EXPECT_GT(e["timestamp"]["seconds"].GetInt64(), 1600000000);
  EXPECT_LT(e["timestamp"]["microseconds"].GetInt64(), 1000000);
  EXPECT_EQ(formatEvent("STOP").find("\"data\""), std::string::npos);
}

TEST(Session, DeferredReplyKeepsInBandOrder) {
  SessionHarness h;
  h.negotiate();
  EXPECT_EQ(h.send(R"({"execute":"slow","id":1}{"execute":"ping","id":2})"), "");
  EXPECT_EQ(h.session->queuedRequests(), 1u);
  h.out.clear();
  h.t.deferred.front().success();
  EXPECT_EQ(h.out, "{\"return\": {}, \"id\": 1}\r\n{\"return\": {}, \"id\": 2}\r\n");
  EXPECT_EQ(h.session->queuedRequests(), 0u);
}

TEST(Session, OutOfBandBypassesAPendingReply) {
  SessionHarness h;
  h.negotiate(R"({"execute":"qmp_capabilities","arguments":{"enable":["oob"]}})");
  EXPECT_EQ(h.send(R"({"execute":"slow","id":1}{"execute":"ping","id":2}{"exec-oob":"ping","id":3})"),
            "{\"return\": {}, \"id\": 3}\r\n");
  EXPECT_EQ(h.send(R"({"exec-oob":"query-status","id":4})"),
            "{\"id\": 4, \"error\": {\"class\": \"GenericError\", \"desc\": \"The command query-status does not "
            "support OOB\"}}\r\n");
  h.out.clear();
  h.t.deferred.front().success();
  EXPECT_EQ(h.out, "{\"return\": {}, \"id\": 1}\r\n{\"return\": {}, \"id\": 2}\r\n");
  EXPECT_EQ(h.send(R"({"execute":"ping","exec-oob":"ping"})"),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'execute' clashes with "
            "'exec-oob'\"}}\r\n");
}

TEST(Session, ReplyAfterTheClientLeftIsHarmless) {
  SessionHarness h;
  h.negotiate();
  h.send(R"({"execute":"slow","id":1})");
  h.session->close();
  h.out.clear();
  h.t.deferred.front().success();
  EXPECT_EQ(h.out, "");
  h.send(R"({"execute":"slow","id":2})");  // ignored once closed
  EXPECT_EQ(h.t.deferred.size(), 1u);
  h.session.reset();
  h.t.deferred.clear();  // a reply outliving its session
}

TEST(Session, AHandlerThatDropsItsReplyStillAnswers) {
  SessionHarness h;
  h.negotiate();
  EXPECT_EQ(h.send(R"({"execute":"silent","id":9})"),
            "{\"id\": 9, \"error\": {\"class\": \"GenericError\", \"desc\": \"Command produced no reply\"}}\r\n");
  EXPECT_EQ(h.send(R"({"execute":"ping"})"), "{\"return\": {}}\r\n");
}

TEST(Session, QueryCommandsAndSchemaComeFromTheRegistry) {
  SessionHarness h;
  h.negotiate();
  Json commands = parseJson(h.send(R"({"execute":"query-commands"})")).value();
  EXPECT_TRUE(jsonEqual(commands["return"], h.t.registry.queryCommands()));
  Json schema = parseJson(h.send(R"({"execute":"query-qmp-schema"})")).value();
  EXPECT_TRUE(jsonEqual(schema["return"], h.t.registry.querySchema()));
}

}  // namespace
}  // namespace vmmd::qmp
