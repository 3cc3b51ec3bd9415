// define, undefine, dumpxml and the life-cycle commands.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "base/parse.h"
#include "cli/cli.h"

namespace vmmd::cli {

Result<std::string> readDefinitionFile(const std::string& path) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::ifstream in(path);
  if (!in) return Error::fromErrno("cannot read " + path);
  text << in.rdbuf();
  return text.str();
}

namespace {

// A libvirt domain XML starts with '<' (a tag, a declaration or a comment); JSON never does.
bool isDomainXml(const std::string& text) {
  auto first = std::find_if_not(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); });
  return first != text.end() && *first == '<';
}

// vm-define takes {"definition": JSON object} or {"xml": domain XML text}; vmmd validates both.
int define(const Invocation& inv) {
  if (inv.args.size() != 1) return failWith(kUsage, "usage: vmctl define FILE");
  auto text = readDefinitionFile(inv.args[0]);
  if (!text) return failWith(kLocalError, text.error().message());
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  if (isDomainXml(*text)) {
    args.AddMember("xml", qmp::jsonString(*text, a), a);
  } else {
    auto def = qmp::parseJson(*text);
    if (!def) return failWith(kLocalError, inv.args[0] + ": not valid JSON (nor a domain XML): " + def.error().message());
    if (!def->IsObject()) return failWith(kLocalError, inv.args[0] + ": a VM definition is a JSON object");
    args.AddMember("definition", qmp::JsonValue(*def, a), a);
  }
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  auto result = call(*conn.client, "vm-define", &args);
  if (!result) return kVmmdError;
  if (inv.globals.json) printJson(*result);
  else std::printf("defined %s (uuid %s)\n", (*result)["name"].GetString(), (*result)["uuid"].GetString());
  return kOk;
}

// The libvirt domain XML of what vmm runs for the VM ({"xml": TEXT} from vm-dumpxml).
int dumpxml(const Invocation& inv) {
  if (inv.args.size() != 1 || inv.args[0].rfind("-", 0) == 0) return failWith(kUsage, "usage: vmctl dumpxml NAME");
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  auto result = callOnVm(*conn.client, "vm-dumpxml", inv.args[0]);
  if (!result) return kVmmdError;
  if (inv.globals.json) {
    printJson(*result);
    return kOk;
  }
  if (!result->IsObject() || !result->HasMember("xml") || !(*result)["xml"].IsString()) {
    return failWith(kVmmdError, "vm-dumpxml: vmmd's answer has no xml");
  }
  std::string xml((*result)["xml"].GetString(), (*result)["xml"].GetStringLength());
  if (xml.empty() || xml.back() != '\n') xml += '\n';
  std::fwrite(xml.data(), 1, xml.size(), stdout);
  return kOk;
}

int shutdown(const Invocation& inv) {
  std::string name;
  int64_t timeout = -1;
  bool force = false;
  std::string mode;
  const std::string usage = "usage: vmctl shutdown NAME [--timeout S] [--force] [--mode acpi|agent]";
  for (size_t i = 0; i < inv.args.size(); ++i) {
    const std::string& a = inv.args[i];
    if (a == "--force") {
      force = true;
    } else if (a == "--mode" && i + 1 < inv.args.size()) {
      mode = inv.args[++i];
      if (mode != "acpi" && mode != "agent") return failWith(kUsage, "--mode: expected acpi or agent, got '" + mode + "'");
    } else if (a == "--timeout" && i + 1 < inv.args.size()) {
      auto seconds = parseUnsigned(inv.args[++i]);
      if (!seconds || *seconds > uint64_t{INT64_MAX}) return failWith(kUsage, "--timeout: expected seconds, got '" + inv.args[i] + "'");
      timeout = static_cast<int64_t>(*seconds);
    } else if (a.rfind("-", 0) == 0 || !name.empty()) {
      return failWith(kUsage, usage);
    } else {
      name = a;
    }
  }
  if (name.empty()) return failWith(kUsage, usage);
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  args.AddMember("name", qmp::jsonString(name, a), a);
  if (timeout >= 0) args.AddMember("timeout", timeout, a);
  if (force) args.AddMember("force", true, a);
  if (!mode.empty()) args.AddMember("mode", qmp::jsonString(mode, a), a);
  auto result = call(*conn.client, "vm-shutdown", &args);
  if (!result) return kVmmdError;
  bool forced = result->IsObject() && result->HasMember("forced") && (*result)["forced"].IsBool() && (*result)["forced"].GetBool();
  std::printf("%s %s\n", name.c_str(), forced ? "destroyed after the shutdown timeout" : "shut off");
  return kOk;
}

}  // namespace

int runVmCommand(const Invocation& inv) {
  if (inv.command == "define") return define(inv);
  if (inv.command == "dumpxml") return dumpxml(inv);
  if (inv.command == "shutdown") return shutdown(inv);
  if (inv.args.size() != 1 || inv.args[0].rfind("-", 0) == 0) return failWith(kUsage, "usage: vmctl " + inv.command + " NAME");
  const std::string& name = inv.args[0];
  auto conn = connectToVmmd(inv.globals);
  if (!conn.client) return conn.exit_code;
  auto result = callOnVm(*conn.client, "vm-" + inv.command, name);
  if (!result) return kVmmdError;
  static const std::pair<const char*, const char*> done[] = {
      {"undefine", "undefined"}, {"start", "started"}, {"destroy", "destroyed"},
      {"reboot", "reset"},       {"pause", "paused"},  {"resume", "resumed"}};
  for (auto [command, text] : done) {
    if (inv.command == command) std::printf("%s %s\n", name.c_str(), text);
  }
  return kOk;
}

}  // namespace vmmd::cli
