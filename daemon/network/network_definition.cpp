#include "daemon/network/network_definition.h"

#include <cctype>

#include "daemon/definition/identifiers.h"
#include "daemon/definition/json_object_reader.h"

namespace vmmd::daemon {

std::string_view toString(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::kNat: return "nat";
    case NetworkMode::kIsolated: return "isolated";
    case NetworkMode::kBridge: return "bridge";
  }
  return "?";
}

Status validateNetworkName(std::string_view name) {
  if (name.empty() || name.size() > 32) return Error("a network name has 1 to 32 characters");
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return Error("a network name starts with a letter or a digit");
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return Error("a network name has only letters, digits, '-' and '_'");
    }
  }
  return {};
}

namespace {

// A DNS domain: dot-separated labels of [a-z0-9-] (1..63, no leading/trailing '-'), at most 253.
Status validateDomain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) return Error("a domain has 1 to 253 characters");
  size_t start = 0;
  while (start <= domain.size()) {
    size_t dot = domain.find('.', start);
    std::string_view label = domain.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return Error("'" + std::string(domain) + "' is not a DNS domain (labels of 1 to 63 letters, digits or '-')");
    }
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return Error("'" + std::string(domain) + "' is not a DNS domain (labels of 1 to 63 letters, digits or '-')");
      }
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return {};
}

Result<uint32_t> requiredIpv4(const JsonObjectReader& reader, std::string_view key) {
  auto text = reader.requiredString(key);
  if (!text) return text.error();
  auto address = parseIpv4(*text);
  if (!address) return reader.fieldError(key, "'" + *text + "' is not an IPv4 address (a.b.c.d)");
  return *address;
}

Result<NetworkIpv4> parseIpv4Section(const rapidjson::Value& value) {
  if (!value.IsObject()) return Error("ipv4: must be an object");
  JsonObjectReader reader(value, "ipv4.");
  if (auto st = reader.checkKeys({"address", "prefix", "dhcp"}); !st) return st.error();
  NetworkIpv4 ipv4;
  auto address = requiredIpv4(reader, "address");
  if (!address) return address.error();
  ipv4.address = *address;
  auto prefix = reader.requiredInteger("prefix", 8, 30, "must be 8..30 (room for the bridge and its guests)");
  if (!prefix) return prefix.error();
  ipv4.prefix = static_cast<int>(*prefix);
  Ipv4Subnet subnet = ipv4.subnet();
  if (ipv4.address == subnet.network || ipv4.address == subnet.broadcast()) {
    return reader.fieldError("address", formatIpv4(ipv4.address) + " is the network or broadcast address of " + subnet.text());
  }
  if ((ipv4.address >> 24) == 127 || (ipv4.address >> 28) >= 14 || (ipv4.address >> 24) == 0) {
    return reader.fieldError("address", formatIpv4(ipv4.address) + " is not a unicast address for a LAN");
  }
  const rapidjson::Value* dhcp = reader.find("dhcp");
  if (!dhcp) return ipv4;
  if (!dhcp->IsObject()) return Error("ipv4.dhcp: must be an object");
  JsonObjectReader range(*dhcp, "ipv4.dhcp.");
  if (auto st = range.checkKeys({"start", "end"}); !st) return st.error();
  auto start = requiredIpv4(range, "start");
  if (!start) return start.error();
  auto end = requiredIpv4(range, "end");
  if (!end) return end.error();
  for (auto [key, value] : {std::pair{"start", *start}, std::pair{"end", *end}}) {
    if (!subnet.contains(value) || value == subnet.network || value == subnet.broadcast()) {
      return range.fieldError(key, formatIpv4(value) + " is not a host address of " + subnet.text());
    }
  }
  if (*start > *end) return range.fieldError("end", formatIpv4(*end) + " is before the start " + formatIpv4(*start));
  if (ipv4.address >= *start && ipv4.address <= *end) {
    return Error("ipv4.dhcp: the range " + formatIpv4(*start) + "-" + formatIpv4(*end) + " holds the bridge's address " +
                 formatIpv4(ipv4.address));
  }
  ipv4.dhcp_start = *start;
  ipv4.dhcp_end = *end;
  return ipv4;
}

}  // namespace

Result<NetworkDefinition> parseNetworkDefinition(const qmp::JsonValue& document) {
  if (!document.IsObject()) return Error("a network definition is a JSON object");
  JsonObjectReader reader(document, "");
  if (auto st = reader.checkKeys({"name", "mode", "bridge", "ipv4", "domain", "autostart"}); !st) return st.error();
  NetworkDefinition def;
  auto name = reader.requiredString("name");
  if (!name) return name.error();
  if (auto st = validateNetworkName(*name); !st) return reader.fieldError("name", st.error().message());
  def.name = *name;
  auto mode = reader.requiredString("mode");
  if (!mode) return mode.error();
  if (*mode == "nat") def.mode = NetworkMode::kNat;
  else if (*mode == "isolated") def.mode = NetworkMode::kIsolated;
  else if (*mode == "bridge") def.mode = NetworkMode::kBridge;
  else return reader.fieldError("mode", "'" + *mode + "' is not one of nat, isolated, bridge");
  auto bridge = reader.requiredString("bridge");
  if (!bridge) return bridge.error();
  if (auto st = validateIfname(*bridge); !st) return reader.fieldError("bridge", st.error().message());
  def.bridge = *bridge;
  const rapidjson::Value* ipv4 = reader.find("ipv4");
  if (def.mode == NetworkMode::kBridge) {
    if (ipv4) return reader.fieldError("ipv4", "mode bridge takes no address: the operator's bridge has its own");
  } else {
    if (!ipv4) return reader.fieldError("ipv4", "is required for mode " + std::string(toString(def.mode)));
    auto parsed = parseIpv4Section(*ipv4);
    if (!parsed) return parsed.error();
    def.ipv4 = *parsed;
  }
  auto domain = reader.optionalString("domain");
  if (!domain) return domain.error();
  if (*domain) {
    if (def.mode == NetworkMode::kBridge) return reader.fieldError("domain", "mode bridge has no DNS server of vmmd's");
    if (auto st = validateDomain(**domain); !st) return reader.fieldError("domain", st.error().message());
    def.domain = *domain;
  }
  auto autostart = reader.optionalBool("autostart");
  if (!autostart) return autostart.error();
  def.autostart = autostart->value_or(false);
  return def;
}

Result<NetworkDefinition> parseNetworkDefinition(std::string_view json) {
  auto doc = qmp::parseJson(json);
  if (!doc) return doc.error().withContext("network definition");
  return parseNetworkDefinition(static_cast<const qmp::JsonValue&>(*doc));
}

qmp::Json networkDefinitionJson(const NetworkDefinition& def) {
  qmp::Json doc;
  doc.SetObject();
  auto& a = doc.GetAllocator();
  auto text = [&](std::string_view s) { return qmp::jsonString(s, a); };
  doc.AddMember("name", text(def.name), a);
  doc.AddMember("mode", text(toString(def.mode)), a);
  doc.AddMember("bridge", text(def.bridge), a);
  if (def.ipv4) {
    qmp::JsonValue ipv4(rapidjson::kObjectType);
    ipv4.AddMember("address", text(formatIpv4(def.ipv4->address)), a);
    ipv4.AddMember("prefix", def.ipv4->prefix, a);
    if (def.ipv4->dhcp_start && def.ipv4->dhcp_end) {
      qmp::JsonValue dhcp(rapidjson::kObjectType);
      dhcp.AddMember("start", text(formatIpv4(*def.ipv4->dhcp_start)), a);
      dhcp.AddMember("end", text(formatIpv4(*def.ipv4->dhcp_end)), a);
      ipv4.AddMember("dhcp", dhcp, a);
    }
    doc.AddMember("ipv4", ipv4, a);
  }
  if (def.domain) doc.AddMember("domain", text(*def.domain), a);
  doc.AddMember("autostart", def.autostart, a);
  return doc;
}

std::string serializeNetworkDefinition(const NetworkDefinition& def) { return qmp::toJson(networkDefinitionJson(def)); }

NetworkDefinition defaultNetworkDefinition() {
  NetworkDefinition def;
  def.name = "default";
  def.mode = NetworkMode::kNat;
  def.bridge = "vmmdbr0";
  def.ipv4 = NetworkIpv4{*parseIpv4("192.168.124.1"), 24, parseIpv4("192.168.124.2"), parseIpv4("192.168.124.254")};
  return def;
}

}  // namespace vmmd::daemon
