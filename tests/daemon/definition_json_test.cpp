#include "daemon/definition/definition_json.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

// A document with `extra` spliced in before the closing brace (`extra` starts with a comma).
std::string minimal(const std::string& extra = "") {
  return R"({"schema": 1, "name": "web1", "memory": 512, "kernel": "/boot/vmlinuz")" + extra + "}";
}

std::string errorOf(const std::string& json) {
  auto def = parseDefinition(json);
  if (def.ok()) return "<accepted>";
  return def.error().message();
}

TEST(DefinitionJson, MinimalDocumentGetsDefaults) {
  auto def = parseDefinition(minimal());
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->name, "web1");
  EXPECT_EQ(def->memory_mib, 512u);
  EXPECT_EQ(def->vcpus, 1u);
  EXPECT_EQ(def->kernel, "/boot/vmlinuz");
  EXPECT_FALSE(def->initrd.has_value());
  EXPECT_FALSE(def->cmdline.has_value());
  EXPECT_TRUE(def->disks.empty());
  EXPECT_TRUE(def->nics.empty());
  EXPECT_TRUE(def->serial);
  EXPECT_FALSE(def->agent);
  EXPECT_FALSE(def->autostart);
  EXPECT_EQ(def->on_crash, CrashPolicy::kDestroy);
  EXPECT_EQ(def->on_poweroff, PoweroffPolicy::kDestroy);
  EXPECT_EQ(def->restart_backoff, RestartBackoff{});
  EXPECT_EQ(def->uuid.size(), 36u);  // generated
}

TEST(DefinitionJson, FullDocumentSerializesCanonically) {
  const std::string input = R"({
    "restart_backoff": {"max_attempts": 0, "initial_ms": 250, "max_ms": 8000, "reset_after_s": 60},
    "on_poweroff": "restart", "on_crash": "restart", "autostart": true, "agent": true, "serial": false,
    "nics": [{"mac": "52:54:00:AA:bb:01", "ifname": "tap0"}],
    "disks": [{"path": "/var/lib/vm/root.qcow2", "format": "qcow2", "cache": "none"},
              {"id": "seed", "path": "/var/lib/vm/seed,1.img", "format": "raw", "readonly": true}],
    "cmdline": "console=ttyS0 root=/dev/vda", "initrd": "/boot/initrd.img", "kernel": "/boot/vmlinuz",
    "vcpus": 4, "memory": 2048, "uuid": "3F2504E0-4F89-41D3-9A0C-0305E82C3301", "name": "db.prod_1", "schema": 1})";
  auto def = parseDefinition(input);
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(serializeDefinition(*def),
            R"({"schema":1,"name":"db.prod_1","uuid":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","memory":2048,"vcpus":4,"machine":"pc",)"
            R"("kernel":"/boot/vmlinuz","initrd":"/boot/initrd.img","cmdline":"console=ttyS0 root=/dev/vda",)"
            R"("disks":[{"id":"disk0","path":"/var/lib/vm/root.qcow2","format":"qcow2","readonly":false,"cache":"none"},)"
            R"({"id":"seed","path":"/var/lib/vm/seed,1.img","format":"raw","readonly":true,"cache":"writeback"}],)"
            R"("nics":[{"ifname":"tap0","mac":"52:54:00:aa:bb:01"}],"serial":false,"agent":true,"autostart":true,)"
            R"("on_crash":"restart","on_poweroff":"restart",)"
            R"("restart_backoff":{"initial_ms":250,"max_ms":8000,"max_attempts":0,"reset_after_s":60}})");
}

TEST(DefinitionJson, RoundTripIsExact) {
  auto def = parseDefinition(minimal(R"(, "nics": [{"ifname": "tap0"}, {"ifname": "tap1"}],
                                        "disks": [{"path": "/a.img", "format": "raw"}], "cmdline": "é \"quoted\"")"));
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->nics[0].mac.substr(0, 9), "52:54:00:");
  EXPECT_NE(def->nics[0].mac, def->nics[1].mac);
  std::string text = serializeDefinition(*def);
  auto again = parseDefinition(text);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(*again, *def);  // generated uuid and MACs are kept, not regenerated
  EXPECT_EQ(serializeDefinition(*again), text);
}

TEST(DefinitionJson, NicsOnNetworks) {
  auto def = parseDefinition(minimal(R"(, "nics": [{"network": "default"}, {"network": "default"},
                                                    {"ifname": "tap0", "mac": "52:54:00:00:00:09"}])"));
  ASSERT_TRUE(def.ok()) << def.error().message();
  ASSERT_EQ(def->nics.size(), 3u);
  EXPECT_TRUE(def->nics[0].onNetwork());
  EXPECT_EQ(def->nics[0].network, "default");
  EXPECT_EQ(def->nics[0].ifname, "");
  EXPECT_EQ(def->nics[0].mac.substr(0, 9), "52:54:00:");  // generated, as for a tap NIC
  EXPECT_NE(def->nics[0].mac, def->nics[1].mac);          // two NICs on one network
  EXPECT_FALSE(def->nics[2].onNetwork());
  std::string text = serializeDefinition(*def);
  EXPECT_NE(text.find(R"("nics":[{"network":"default","mac":")" + def->nics[0].mac + R"("})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"({"ifname":"tap0","mac":"52:54:00:00:00:09"}])"), std::string::npos) << text;
  auto again = parseDefinition(text);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(*again, *def);
  EXPECT_EQ(serializeDefinition(*again), text);
}

TEST(DefinitionJson, DiskCacheTakesEveryQemuMode) {
  for (const char* mode : {"writeback", "none", "writethrough", "directsync", "unsafe", "off"}) {
    auto def = parseDefinition(minimal(std::string(R"(, "disks": [{"path": "/a.img", "format": "raw", "cache": ")") +
                                       mode + R"("}])"));
    ASSERT_TRUE(def.ok()) << mode << ": " << def.error().message();
    std::string canonical = std::string(mode) == "off" ? "none" : mode;
    EXPECT_EQ(toString(def->disks[0].cache), canonical);
    EXPECT_NE(serializeDefinition(*def).find(R"("cache":")" + canonical + '"'), std::string::npos) << mode;
  }
}

TEST(DefinitionJson, NullMeansAbsent) {
  auto def = parseDefinition(minimal(R"(, "initrd": null, "cmdline": null, "uuid": null, "disks": null)"));
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_FALSE(def->initrd.has_value());
}

TEST(DefinitionJson, ErrorsNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"schema": 1, "name": "a", "memory": 8, "kernel": "/k"})", "memory: must be ≥ 16 MiB"},
      {R"({"schema": 1, "name": "a", "memory": -1, "kernel": "/k"})", "memory: must be ≥ 16 MiB"},
      {R"({"schema": 1, "name": "a", "memory": "512", "kernel": "/k"})", "memory: must be an integer"},
      {R"({"schema": 1, "name": "a", "memory": 512.5, "kernel": "/k"})", "memory: must be an integer"},
      {R"({"schema": 1, "name": "a", "memory": 1e3, "kernel": "/k"})", "memory: must be an integer"},
      {R"({"schema": 1, "name": "a", "memory": 2000000, "kernel": "/k"})", "memory: must be at most 1048576 MiB"},
      {R"({"schema": 1, "name": "a", "memory": 18446744073709551615, "kernel": "/k"})",
       "memory: must be at most 1048576 MiB"},
      {R"({"schema": 1, "name": "a", "kernel": "/k"})", "memory: required"},
      {R"({"schema": 1, "memory": 64, "kernel": "/k"})", "name: required"},
      {R"({"schema": 1, "name": "a", "memory": 64})",
       "kernel: required, unless \"boot\" says to boot from a disk through firmware"},
      {minimal(R"(, "vcpus": 0)"), "vcpus: must be between 1 and 254"},
      {minimal(R"(, "vcpus": 255)"), "vcpus: must be between 1 and 254"},
      {minimal(R"(, "vcpus": true)"), "vcpus: must be an integer"},
      {minimal(R"(, "disks": [{"path": "/a", "format": "raw"}, {"path": "/b", "format": "vmdk"}])"),
       "disks[1].format: must be raw or qcow2"},
      {minimal(R"(, "disks": [{"path": "/a"}])"), "disks[0].format: required"},
      {minimal(R"(, "disks": [{"path": "a.img", "format": "raw"}])"), "disks[0].path: must be an absolute path"},
      {minimal(R"(, "disks": [{"path": "/a", "format": "raw", "readonly": "yes"}])"),
       "disks[0].readonly: must be true or false"},
      {minimal(R"(, "disks": [{"path": "/a", "format": "raw", "cache": "fast"}])"),
       "disks[0].cache: cache mode 'fast' is unknown (writeback, none, writethrough, directsync, unsafe)"},
      {minimal(R"(, "disks": [{"path": "/a", "format": "raw", "id": "0a"}])"), "disks[0].id: must start with a letter"},
      {minimal(R"(, "disks": [{"path": "/a", "format": "raw", "size": 5}])"), "disks[0].size: unknown field"},
      {minimal(R"(, "disks": [{"path": "/a", "format": "raw"}, {"path": "/a", "format": "raw"}])"),
       "disks[1].path: same file as disks[0]"},
      {minimal(R"(, "disks": [{"path": "/a", "format": "raw", "id": "x"}, {"path": "/b", "format": "raw", "id": "x"}])"),
       "disks[1].id: same as disks[0].id"},
      {minimal(R"(, "disks": {"path": "/a"})"), "disks: must be an array"},
      {minimal(R"(, "disks": ["/a"])"), "disks[0]: must be an object"},
      {minimal(R"(, "nics": [{"ifname": "tap0", "colour": "red"}])"), "nics[0].colour: unknown field"},
      {minimal(R"(, "nics": [{"mac": "52:54:00:00:00:01"}])"),
       "nics[0].ifname: required, or \"network\": the name of a network vmmd manages"},
      {minimal(R"(, "nics": [{"ifname": "tap0", "network": "default"}])"),
       "nics[0].network: cannot be combined with ifname (a NIC is on an existing tap or on a vmmd network)"},
      {minimal(R"(, "nics": [{"network": "a/b"}])"), "nics[0].network: may contain only letters, digits, '.', '_' and '-'"},
      {minimal(R"(, "nics": [{"network": ""}])"), "nics[0].network: must not be empty"},
      {minimal(R"(, "nics": [{"network": 5}])"), "nics[0].network: must be a string"},
      {minimal(R"(, "nics": [{"network": "default", "mac": "52:54:00:00:00:01"}, {"network": "default", "mac": "52:54:00:00:00:01"}])"),
       "nics[1].mac: same as nics[0]"},
      {minimal(R"(, "nics": [{"ifname": "tap0", "mac": "52:54:00:00:00"}])"),
       "nics[0].mac: must be a MAC address like 52:54:00:12:34:56"},
      {minimal(R"(, "nics": [{"ifname": "tap0", "mac": "01:54:00:00:00:01"}])"),
       "nics[0].mac: must be a unicast address (the low bit of the first byte clear)"},
      {minimal(R"(, "nics": [{"ifname": "tap0"}, {"ifname": "tap0"}])"), "nics[1].ifname: same as nics[0]"},
      {minimal(R"(, "nics": [{"ifname": "a", "mac": "52:54:00:00:00:01"}, {"ifname": "b", "mac": "52:54:00:00:00:01"}])"),
       "nics[1].mac: same as nics[0]"},
      {minimal(R"(, "nics": [{"ifname": "a/b"}])"),
       "nics[0].ifname: must be a network interface name (printable ASCII without '/', ',', ':' or spaces)"},
      {minimal(R"(, "colour": "red")"), "colour: unknown field"},
      {R"({"schema": 1, "name": "a", "name": "b", "memory": 64, "kernel": "/k"})", "name: duplicate field"},
      {minimal(R"(, "uuid": "not-a-uuid")"), "uuid: must be a UUID like 3f2504e0-4f89-41d3-9a0c-0305e82c3301"},
      {R"({"schema": 1, "name": ".a", "memory": 64, "kernel": "/k"})", "name: must not start with '.' or '-'"},
      {R"({"schema": 1, "name": 5, "memory": 64, "kernel": "/k"})", "name: must be a string"},
      {R"({"schema": 1, "name": "a", "memory": 64, "kernel": "vmlinuz"})", "kernel: must be an absolute path"},
      {minimal(R"(, "initrd": "")"), "initrd: must be an absolute path"},
      {minimal(R"(, "cmdline": "a\u0000b")"), "cmdline: must not contain NUL bytes"},
      // A lone low surrogate: RapidJSON decodes it to bytes that are not UTF-8 (found by the fuzzer).
      {minimal(R"(, "cmdline": "a\uDDCDb")"), "cmdline: is not valid UTF-8 (a lone surrogate or a noncharacter)"},
      {minimal(R"(, "cmdline": ")" + std::string(2048, 'x') + "\""), "cmdline: must be at most 2047 bytes"},
      {minimal(R"(, "autostart": 1)"), "autostart: must be true or false"},
      {minimal(R"(, "on_crash": "reboot")"), "on_crash: must be restart, destroy or preserve"},
      {minimal(R"(, "on_poweroff": "preserve")"), "on_poweroff: must be destroy or restart"},
      {minimal(R"(, "restart_backoff": {"initial_ms": 5000, "max_ms": 1000})"),
       "restart_backoff.max_ms: must not be less than initial_ms"},
      {minimal(R"(, "restart_backoff": {"initial_ms": 0})"), "restart_backoff.initial_ms: must be between 1 and 3600000"},
      {minimal(R"(, "restart_backoff": {"jitter": 1})"), "restart_backoff.jitter: unknown field"},
      {minimal(R"(, "restart_backoff": 5)"), "restart_backoff: must be an object"},
      {minimal(R"(, "limits": [])"), "limits: must be an object"},
      {minimal(R"(, "limits": {"cpu_percent": 0})"), "limits.cpu_percent: must be between 1 and 25400 (100 is one host CPU)"},
      {minimal(R"(, "limits": {"cpu_percent": 1.5})"), "limits.cpu_percent: must be an integer"},
      {minimal(R"(, "limits": {"memory_overhead_mib": -1})"), "limits.memory_overhead_mib: must be between 0 and 1048576"},
      {minimal(R"(, "limits": {"memory_mib": 5})"), "limits.memory_mib: unknown field"},
      {R"({"name": "a", "memory": 64, "kernel": "/k"})", "schema: required (this vmmd writes \"schema\": 1)"},
      {R"({"schema": 2, "name": "a", "memory": 64, "kernel": "/k", "new_thing": 1})",
       "schema: version 2 is newer than this vmmd understands (1)"},
      {R"({"schema": "1", "name": "a", "memory": 64, "kernel": "/k"})", "schema: must be an integer"},
      {R"({"schema": 0, "name": "a", "memory": 64, "kernel": "/k"})", "schema: must be 1"},
      {"[1, 2]", "definition: must be a JSON object"},
      {"", "definition: invalid JSON at offset 0: The document is empty."},
      {R"({"schema": 1,})", "definition: invalid JSON at offset 13: Missing a name for object member."},
      {minimal() + " {}", "definition: invalid JSON at offset 72: The document root must not be followed by other values."},
  };
  for (const auto& [json, message] : cases) EXPECT_EQ(errorOf(json), message) << json;
}

TEST(DefinitionJson, HostileInputIsRefusedNotCrashedOn) {
  // Deep nesting (the iterative parser does not recurse), invalid UTF-8, NUL outside strings, size.
  EXPECT_EQ(errorOf(std::string(200000, '[') + std::string(200000, ']')), "definition: must be a JSON object");
  EXPECT_EQ(errorOf(minimal(R"(, "x": )" + std::string(100000, '[') )).substr(0, 34), "definition: invalid JSON at offset");
  EXPECT_EQ(errorOf(minimal(", \"cmdline\": \"\xff\xfe\"")).substr(0, 34), "definition: invalid JSON at offset");
  EXPECT_EQ(errorOf(std::string("{\"schema\": 1\0}", 15)).substr(0, 34), "definition: invalid JSON at offset");
  EXPECT_EQ(errorOf(minimal(R"(, "cmdline": ")" + std::string(kMaxDefinitionBytes, 'x') + "\"")),
            "definition: larger than 1 MiB");
  EXPECT_EQ(errorOf(minimal(", \"\\u0000\": 1")), "<unprintable key>: unknown field");
}

TEST(DefinitionJson, LimitsAreOptionalEachMemberToo) {
  auto none = parseDefinition(minimal());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->limits);
  EXPECT_EQ(serializeDefinition(*none).find("limits"), std::string::npos) << "absent limits are not written";
  auto both = parseDefinition(minimal(R"(, "limits": {"memory_overhead_mib": 0, "cpu_percent": 150})"));
  ASSERT_TRUE(both.ok()) << both.error().message();
  EXPECT_EQ(both->limits, (ResourceLimits{150, 0}));
  std::string text = serializeDefinition(*both);
  EXPECT_NE(text.find(R"("limits":{"cpu_percent":150,"memory_overhead_mib":0})"), std::string::npos) << text;
  auto again = parseDefinition(text);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *both);
  auto cpu_only = parseDefinition(minimal(R"(, "limits": {"cpu_percent": 25400})"));
  ASSERT_TRUE(cpu_only.ok()) << cpu_only.error().message();
  EXPECT_EQ(cpu_only->limits, (ResourceLimits{25400, std::nullopt}));
}

TEST(DefinitionJson, RestartDelayDoublesUpToTheCap) {
  RestartBackoff b{.initial_ms = 100, .max_ms = 1000, .max_attempts = 0, .reset_after_s = 60};
  EXPECT_EQ(restartDelayMs(b, 1), 100u);
  EXPECT_EQ(restartDelayMs(b, 2), 200u);
  EXPECT_EQ(restartDelayMs(b, 4), 800u);
  EXPECT_EQ(restartDelayMs(b, 5), 1000u);
  EXPECT_EQ(restartDelayMs(b, 4000000000u), 1000u);  // no overflow, no long loop
}

TEST(DefinitionFiles, MissingOrWrongFilesAreNamed) {
  test_support::TempDir dir;
  std::ofstream(dir.file("kernel")) << "k";
  std::ofstream(dir.file("disk.img")) << "d";
  auto def = parseDefinition(R"({"schema": 1, "name": "a", "memory": 64, "kernel": ")" + dir.file("kernel") +
                             R"(", "disks": [{"path": ")" + dir.file("disk.img") + R"(", "format": "raw"}]})");
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_TRUE(checkDefinitionFiles(*def).ok());

  def->initrd = dir.file("missing-initrd");
  EXPECT_EQ(checkDefinitionFiles(*def).error().message(),
            "initrd: " + dir.file("missing-initrd") + ": No such file or directory");
  def->initrd.reset();
  def->kernel = dir.path();
  EXPECT_EQ(checkDefinitionFiles(*def).error().message(), "kernel: " + dir.path() + ": not a regular file");
  def->kernel = dir.file("kernel");
  def->disks[0].path = dir.file("nope.qcow2");
  EXPECT_EQ(checkDefinitionFiles(*def).error().message(),
            "disks[0].path: " + dir.file("nope.qcow2") + ": No such file or directory");
}

}  // namespace
}  // namespace vmmd::daemon
