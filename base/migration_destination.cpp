#include "base/migration_destination.h"

#include <filesystem>
#include <set>

namespace vmmd {
namespace {

bool isAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool isHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

Error bad(std::string_view text, const std::string& why) { return Error("destination '" + std::string(text) + "': " + why); }

// A user name as useradd accepts it (and nothing an ssh option parser could take).
Status checkUser(const std::string& user) {
  if (user.empty()) return Error("empty user name before '@'");
  if (user.size() > 32) return Error("user name '" + user + "' is longer than 32 characters");
  if (user[0] == '-') return Error("user name '" + user + "' starts with '-'");
  for (char c : user) {
    if (!isAlnum(c) && c != '_' && c != '-' && c != '.') return Error("user name '" + user + "' has a character other than A-Z a-z 0-9 . _ -");
  }
  return {};
}

// A DNS name or an IPv4 address (letters, digits, '.', '-'), or the inside of an IPv6 literal.
Status checkHost(const std::string& host, bool ipv6) {
  if (host.empty()) return Error("no host");
  if (host.size() > 253) return Error("host name longer than 253 characters");
  if (host[0] == '-') return Error("host '" + host + "' starts with '-'");
  for (char c : host) {
    bool ok = ipv6 ? (isHex(c) || c == ':' || c == '.') : (isAlnum(c) || c == '.' || c == '-');
    if (!ok) {
      return Error("host '" + host + "' has a character other than " + (ipv6 ? "hex digits, ':' and '.' (IPv6)" : "A-Z a-z 0-9 . - (a name or IPv4 address; IPv6 in brackets)"));
    }
  }
  return {};
}

Result<uint16_t> parsePort(const std::string& text) {
  if (text.empty() || text.size() > 5) return Error("port '" + text + "' is not a number from 1 to 65535");
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Error("port '" + text + "' is not a number from 1 to 65535");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return Error("port '" + text + "' is not a number from 1 to 65535");
  return static_cast<uint16_t>(value);
}

Result<std::string> percentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size() || !isHex(text[i + 1]) || !isHex(text[i + 2])) return Error("bad %-escape in '" + std::string(text) + "'");
    out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return out;
}

// Absolute, and no control character (the remote command line is one line of shell).
Status checkRemotePath(const std::string& key, const std::string& path) {
  if (path.empty() || path[0] != '/') return Error(key + "='" + path + "' is not an absolute path");
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return Error(key + "= has a control character");
  }
  return {};
}

// Paths given to ssh itself: ssh expands '%' and '~' tokens in them and splits option values at
// blanks and quotes, so only plain characters pass.
Status checkLocalSshPath(const std::string& key, const std::string& path) {
  if (path.empty() || path[0] != '/') return Error(key + "='" + path + "' is not an absolute path");
  for (char c : path) {
    if (!isAlnum(c) && std::string_view("/._-+,@=:").find(c) == std::string_view::npos) {
      return Error(key + "='" + path + "' has a character ssh would reinterpret (use A-Z a-z 0-9 / . _ - + , @ = :)");
    }
  }
  return {};
}

Status applyParameter(SshDestination& d, const std::string& key, const std::string& value) {
  if (value.empty()) return Error("parameter '" + key + "' has no value");
  if (key == "socket" || key == "vmctl") {
    if (auto ok = checkRemotePath(key, value); !ok) return ok;
    (key == "socket" ? d.socket : d.vmctl) = value;
  } else if (key == "keyfile" || key == "known_hosts") {
    if (auto ok = checkLocalSshPath(key, value); !ok) return ok;
    (key == "keyfile" ? d.keyfile : d.known_hosts) = value;
  } else if (key == "no_verify") {
    if (value != "0" && value != "1") return Error("no_verify='" + value + "' is neither 0 nor 1");
    d.no_verify = value == "1";
  } else {
    return Error("unknown parameter '" + key + "' (known: socket, keyfile, known_hosts, no_verify, vmctl)");
  }
  return {};
}

Status parseQuery(SshDestination& d, std::string_view query) {
  std::set<std::string> seen;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return Error("parameter '" + std::string(item) + "' has no '=VALUE'");
    auto key = percentDecode(item.substr(0, eq));
    if (!key) return key.error();
    auto value = percentDecode(item.substr(eq + 1));
    if (!value) return value.error();
    if (!seen.insert(*key).second) return Error("parameter '" + *key + "' given twice");
    if (auto ok = applyParameter(d, *key, *value); !ok) return ok;
  }
  return {};
}

// "[USER@]HOST[:PORT]" after "ssh://".
Status parseAuthority(SshDestination& d, std::string_view authority) {
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    auto user = percentDecode(authority.substr(0, at));
    if (!user) return user.error();
    if (auto ok = checkUser(*user); !ok) return ok;
    d.user = *user;
    authority = authority.substr(at + 1);
  }
  std::string_view port;
  bool ipv6 = !authority.empty() && authority[0] == '[';
  if (ipv6) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error("'[' without ']' around an IPv6 address");
    d.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') return Error("'" + std::string(rest) + "' after the IPv6 address");
    if (!rest.empty()) port = rest.substr(1);
    if (!rest.empty() && port.empty()) return Error("':' without a port");
  } else {
    size_t colon = authority.find(':');
    d.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return Error("':' without a port");
    }
  }
  if (auto ok = checkHost(d.host, ipv6); !ok) return ok;
  if (!port.empty()) {
    auto number = parsePort(std::string(port));
    if (!number) return number.error();
    d.port = *number;
  }
  return {};
}

Result<SshDestination> parseSshUri(std::string_view rest) {
  SshDestination d;
  size_t query_at = rest.find('?');
  std::string_view before = rest.substr(0, query_at);
  std::string_view query = query_at == std::string_view::npos ? std::string_view() : rest.substr(query_at + 1);
  size_t slash = before.find('/');
  std::string_view authority = before.substr(0, slash);
  if (slash != std::string_view::npos && before.substr(slash) != "/") {
    return Error("unexpected path '" + std::string(before.substr(slash)) + "' (the control socket is ?socket=PATH)");
  }
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) return Error("unexpected '#' fragment");
  if (auto ok = parseAuthority(d, authority); !ok) return ok.error();
  if (auto ok = parseQuery(d, query); !ok) return ok.error();
  return d;
}

}  // namespace

std::string SshDestination::display() const {
  std::string out = "ssh://" + user + "@" + (host.find(':') != std::string::npos ? "[" + host + "]" : host);
  if (port) out += ":" + std::to_string(port);
  if (socket.empty()) return out;
  // Escaped where the query would read it otherwise, so the display form parses back the same.
  out += "?socket=";
  for (char c : socket) {
    static const char* hex = "0123456789ABCDEF";
    if (c == '%' || c == '&' || c == '#') out += {'%', hex[(c >> 4) & 0xf], hex[c & 0xf]};
    else out += c;
  }
  return out;
}

std::string describeDestination(const MigrationDestination& destination) {
  if (const auto* local = std::get_if<LocalDestination>(&destination)) return local->socket;
  return std::get<SshDestination>(destination).display();
}

Result<MigrationDestination> parseMigrationDestination(std::string_view text, const PathExists& exists) {
  if (text.empty()) return Error("empty migration destination");
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad(text, "has a control character");
  }
  if (text.rfind("ssh://", 0) == 0) {
    auto ssh = parseSshUri(text.substr(6));
    if (!ssh) return bad(text, ssh.error().message());
    return MigrationDestination(std::move(*ssh));
  }
  if (size_t scheme = text.find("://"); scheme != std::string_view::npos) {
    return bad(text, "unsupported scheme '" + std::string(text.substr(0, scheme)) + "' (a socket path, HOST or ssh://[USER@]HOST[:PORT][?socket=PATH&...])");
  }
  const std::string word(text);
  bool is_path = word.find('/') != std::string::npos;
  if (!is_path) {
    std::error_code ignored;  // unreadable counts as absent: then it names a host
    is_path = exists ? exists(word) : std::filesystem::exists(word, ignored);
  }
  if (is_path) {
    std::error_code ec;
    auto absolute = std::filesystem::absolute(word, ec);
    if (ec) return bad(text, ec.message());
    return MigrationDestination(LocalDestination{absolute.lexically_normal().string()});
  }
  // A bare host: root's vmmd there, as libvirt's qemu+ssh://HOST/system.
  SshDestination d;
  if (auto ok = parseAuthority(d, text); !ok) return bad(text, ok.error().message() + " (a socket path needs a '/')");
  return MigrationDestination(std::move(d));
}

}  // namespace vmmd
