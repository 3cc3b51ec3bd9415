#include "vmm/config/option_parser.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "base/key_values.h"
#include "base/parse.h"
#include "vmm/config/drive_options.h"
#include "vmm/config/machine_options.h"

namespace vmmd::config {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint32_t kMaxVcpus = 254;  // xAPIC ids in the MADT; 255 is the broadcast id

struct ParseState {
  MachineConfig config;
  std::vector<BlockdevNode> blockdevs;
  int drive_index = 0;
  bool serial_given = false;
  bool nographic = false;
  bool nodefaults = false;
  int anonymous_chardevs = 0;
};

using Handler = std::function<Status(ParseState&, const std::string& option, const std::string& arg)>;

struct OptionSpec {
  const char* name;
  bool takes_argument;
  const char* help;
  Handler handle;
};

// fd=N: a file descriptor the parent process left open for us; nullopt when absent.
Result<std::optional<int>> takeFd(KeyValues& kv) {
  auto text = kv.take("fd");
  if (!text) return std::optional<int>();
  auto n = parseUnsigned(*text);
  if (!n || *n > 65535) return Error(kv.option() + ": fd=" + *text + " is not a file descriptor");
  return std::optional<int>(static_cast<int>(*n));
}

// -add-fd fd=N,set=S[,opaque=TEXT], QEMU's syntax; whether N is open is checked at start.
Status parseAddFd(ParseState& state, const std::string& option, const std::string& arg) {
  auto kv = KeyValues::parse(option, arg);
  if (!kv) return kv.error();
  AddFdConfig add;
  auto fd = takeFd(*kv);
  if (!fd) return fd.error();
  if (!*fd) return Error(option + ": fd= is required");
  add.fd = **fd;
  auto set = kv->take("set");
  if (!set) return Error(option + ": set= is required");
  auto set_id = parseUnsigned(*set);
  if (!set_id || *set_id > static_cast<uint64_t>(INT64_MAX)) return Error(option + ": set=" + *set + " is not an fd set number");
  add.set = *set_id;
  add.opaque = kv->take("opaque").value_or("");
  if (auto st = kv->finish(); !st) return st;
  state.config.add_fds.push_back(add);
  return {};
}

// path=P, or (as QEMU) fd=N: a socket the parent process bound and listens on, passed open.
Status parseSocketPath(ParseState& state, KeyValues& kv, ChardevConfig& chardev) {
  auto path = kv.take("path");
  auto fd = takeFd(kv);
  if (!fd) return fd.error();
  bool has_path = path && !path->empty();
  if (!has_path && !*fd) return Error(kv.option() + ": socket chardev needs path= or fd=");
  if (has_path && *fd) return Error(kv.option() + ": socket chardev takes path= or fd=, not both");
  chardev.path = path.value_or("");
  chardev.fd = fd->value_or(-1);
  for (const auto& other : state.config.chardevs) {
    if (chardev.fd >= 0 && other.fd == chardev.fd) {
      return Error(kv.option() + ": fd=" + std::to_string(chardev.fd) + " is chardev '" + other.id + "' already");
    }
  }
  // QEMU still accepts the old bare flags "server" and "nowait".
  bool legacy_server = false, legacy_nowait = false;
  for (const auto& flag : kv.takeFlags()) {
    if (flag == "server") {
      legacy_server = true;
    } else if (flag == "nowait") {
      legacy_nowait = true;
    } else {
      return Error(kv.option() + ": unexpected item '" + flag + "'");
    }
  }
  auto server = kv.takeBool("server", legacy_server);
  if (!server) return server.error();
  auto wait = kv.takeBool("wait", !legacy_nowait);
  if (!wait) return wait.error();
  chardev.server = *server;
  chardev.wait = *wait;
  if (!chardev.server) return Error(kv.option() + ": only server=on sockets are supported");
  return {};
}

// "unix:PATH,server=on,wait=off" / "stdio" / "chardev:ID" / "file:PATH" / "null" / "none"
Result<std::string> chardevFromShorthand(ParseState& state, const std::string& option, const std::string& spec,
                                         const std::string& label) {
  ChardevConfig chardev;
  chardev.id = label;
  if (spec == "stdio") {
    chardev.backend = ChardevConfig::Backend::Stdio;
  } else if (spec == "null") {
    chardev.backend = ChardevConfig::Backend::Null;
  } else if (spec.rfind("chardev:", 0) == 0) {
    std::string id = spec.substr(8);
    if (id.empty()) return Error(option + ": chardev: needs an id");
    return id;  // resolved once every -chardev has been read
  } else if (spec.rfind("file:", 0) == 0) {
    chardev.backend = ChardevConfig::Backend::File;
    chardev.path = spec.substr(5);
    if (chardev.path.empty()) return Error(option + ": file: needs a path");
  } else if (spec.rfind("unix:", 0) == 0) {
    chardev.backend = ChardevConfig::Backend::Socket;
    auto kv = KeyValues::parse(option, spec.substr(5), "path");
    if (!kv) return kv.error();
    if (auto st = parseSocketPath(state, *kv, chardev); !st) return st.error();
    if (auto st = kv->finish(); !st) return st.error();
  } else {
    return Error(option + ": '" + spec + "' is not a supported backend (stdio, null, unix:PATH, file:PATH, chardev:ID)");
  }
  if (state.config.findChardev(chardev.id)) return Error(option + ": duplicate chardev id '" + chardev.id + "'");
  state.config.chardevs.push_back(chardev);
  return chardev.id;
}

Status parseChardev(ParseState& state, const std::string& option, const std::string& arg) {
  auto kv = KeyValues::parse(option, arg, "backend");
  if (!kv) return kv.error();
  ChardevConfig chardev;
  auto id = kv->take("id");
  if (!id || id->empty()) return Error(option + ": chardev needs id=");
  chardev.id = *id;
  std::string backend = kv->take("backend").value_or("");
  if (backend == "socket") {
    chardev.backend = ChardevConfig::Backend::Socket;
    if (auto st = parseSocketPath(state, *kv, chardev); !st) return st;
  } else if (backend == "stdio") {
    chardev.backend = ChardevConfig::Backend::Stdio;
    (void)kv->take("signal");
  } else if (backend == "file") {
    chardev.backend = ChardevConfig::Backend::File;
    chardev.path = kv->take("path").value_or("");
    if (chardev.path.empty()) return Error(option + ": file chardev needs path=");
  } else if (backend == "null") {
    chardev.backend = ChardevConfig::Backend::Null;
  } else {
    return Error(option + ": backend '" + backend + "' is not supported (socket, stdio, file, null)");
  }
  (void)kv->take("logfile");  // accepted for compatibility; unused
  if (auto st = kv->finish(); !st) return st;
  if (state.config.findChardev(chardev.id)) return Error(option + ": duplicate chardev id '" + chardev.id + "'");
  state.config.chardevs.push_back(chardev);
  return {};
}

Status parseMemory(ParseState& state, const std::string& option, const std::string& arg) {
  auto kv = KeyValues::parse(option, arg, "size");
  if (!kv) return kv.error();
  auto size_text = kv->take("size");
  (void)kv->take("slots");
  (void)kv->take("maxmem");
  if (auto st = kv->finish(); !st) return st;
  if (!size_text) return Error(option + ": missing size");
  auto size = parseSize(*size_text, kMiB);
  if (!size) return size.error().withContext(option);
  if (*size < 2 * kMiB) return Error(option + ": memory size " + *size_text + " is too small (at least 2M)");
  if (*size % 4096) return Error(option + ": memory size " + *size_text + " is not a multiple of 4 KiB");
  state.config.memory_bytes = *size;
  return {};
}

// QEMU 7.2's -sandbox on[,obsolete=..,elevateprivileges=..,spawn=..,resourcecontrol=..]. vmm's
// filter always refuses all four groups, so only "deny" (QEMU's stricter setting) is accepted.
Status parseSandbox(ParseState& state, const std::string& option, const std::string& arg) {
  auto kv = KeyValues::parse(option, arg, "enable");
  if (!kv) return kv.error();
  auto enable = kv->takeBool("enable", false);
  if (!enable) return enable.error();
  for (const char* group : {"obsolete", "elevateprivileges", "spawn", "resourcecontrol"}) {
    auto value = kv->take(group);
    if (!value || *value == "deny") continue;
    if (*value != "allow" && *value != "children") return Error(option + ": invalid argument for " + group + ": '" + *value + "'");
    return Error(option + ": " + group + "=" + *value + " is not supported: vmm's filter always denies these calls (" +
                 group + "=deny)");
  }
  if (auto st = kv->finish(); !st) return st;
  state.config.sandbox = *enable;
  return {};
}

Status parseSmp(ParseState& state, const std::string& option, const std::string& arg) {
  auto kv = KeyValues::parse(option, arg, "cpus");
  if (!kv) return kv.error();
  uint64_t product = 1;
  bool topology = false;
  for (const char* key : {"sockets", "dies", "cores", "threads"}) {
    if (auto v = kv->take(key)) {
      auto n = parseUnsigned(*v);
      if (!n || *n == 0) return Error(option + ": " + key + " must be a positive number, not '" + *v + "'");
      product *= *n;
      topology = true;
    }
  }
  uint64_t cpus = topology ? product : 1;
  if (auto v = kv->take("cpus")) {
    auto n = parseUnsigned(*v);
    if (!n) return Error(option + ": '" + *v + "' is not a CPU count");
    cpus = *n;
  }
  if (auto v = kv->take("maxcpus")) {
    auto n = parseUnsigned(*v);
    if (!n || *n < cpus) return Error(option + ": maxcpus must be at least cpus");
  }
  if (auto st = kv->finish(); !st) return st;
  if (cpus == 0) return Error(option + ": the CPU count must be at least 1");
  if (cpus > kMaxVcpus) return Error(option + ": at most " + std::to_string(kMaxVcpus) + " CPUs are supported");
  state.config.vcpus = static_cast<uint32_t>(cpus);
  return {};
}

Status parseCpu(ParseState& state, const std::string& option, const std::string& arg) {
  auto kv = KeyValues::parse(option, arg, "model");
  if (!kv) return kv.error();
  std::string model = kv->take("model").value_or("");
  if (model != "host" && model != "max") {
    return Error(option + ": CPU model '" + model + "' is not supported (host, max)");
  }
  state.config.cpu = config::CpuConfig{};  // as in QEMU, the last -cpu wins
  state.config.cpu.model = model;
  for (const auto& flag : kv->takeFlags()) {
    if (flag.size() < 2 || (flag[0] != '+' && flag[0] != '-')) return Error(option + ": unexpected item '" + flag + "'");
    state.config.cpu.features.emplace_back(flag.substr(1), flag[0] == '+');
  }
  // The remaining keys are "feature=on|off".
  for (const auto& [feature, value] : kv->takeRemaining()) {
    auto on = parseOnOff(value);
    if (!on) return Error(option + ": " + feature + "=" + value + ": expected on or off");
    state.config.cpu.features.emplace_back(feature, *on);
  }
  return kv->finish();
}

Status parseMachine(ParseState& state, const std::string& option, const std::string& arg) {
  auto kv = KeyValues::parse(option, arg, "type");
  if (!kv) return kv.error();
  if (auto type = kv->take("type")) {
    const std::string& t = *type;
    bool known = t == "pc" || t == "q35" || t == "microvm" || t.rfind("pc-q35-", 0) == 0 ||
                 t.rfind("pc-i440fx-", 0) == 0;
    if (!known) return Error(option + ": machine type '" + t + "' is not supported (pc, q35, microvm)");
    state.config.machine_type = t;
  }
  if (auto accel = kv->take("accel")) {
    if (*accel != "kvm") return Error(option + ": accelerator '" + *accel + "' is not supported (kvm)");
  }
  // The rest depends on the type, which a later -machine may still set: resolveMachineProperties.
  if (auto flags = kv->takeFlags(); !flags.empty()) return Error(option + ": property '" + flags[0] + "' needs a value");
  for (auto& property : kv->takeRemaining()) state.config.machine_properties.push_back(std::move(property));
  return kv->finish();
}

Status parseSerial(ParseState& state, const std::string& option, const std::string& arg) {
  state.serial_given = true;
  if (arg == "none") return {};
  std::string label = "serial" + std::to_string(state.config.serials.size());
  auto id = chardevFromShorthand(state, option, arg, label);
  if (!id) return id.error();
  state.config.serials.push_back({*id});
  return {};
}

Status parseQmp(ParseState& state, const std::string& option, const std::string& arg, bool pretty) {
  std::string label = "compat_monitor" + std::to_string(state.anonymous_chardevs++);
  auto id = chardevFromShorthand(state, option, arg, label);
  if (!id) return id.error();
  state.config.monitors.push_back({*id, pretty});
  return {};
}

Status parseMon(ParseState& state, const std::string& option, const std::string& arg) {
  auto kv = KeyValues::parse(option, arg, "chardev");
  if (!kv) return kv.error();
  auto chardev = kv->take("chardev");
  if (!chardev) return Error(option + ": needs chardev=ID");
  std::string mode = kv->take("mode").value_or("readline");
  if (mode != "control") return Error(option + ": mode '" + mode + "' is not supported (control)");
  auto pretty = kv->takeBool("pretty", false);
  if (!pretty) return pretty.error();
  (void)kv->take("id");
  if (auto st = kv->finish(); !st) return st;
  state.config.monitors.push_back({*chardev, *pretty});
  return {};
}

// -boot [order=]DRIVES[,menu=on|off][,strict=off]: QEMU's drive letters; only c (the first hard
// disk) exists here. bootindex= on -device sets finer orders.
Status parseBoot(ParseState& s, const std::string& o, const std::string& a) {
  auto kv = KeyValues::parse(o, a, "order");
  if (!kv) return kv.error();
  for (const char* key : {"order", "once"}) {
    auto drives = kv->take(key);
    if (drives && (drives->empty() || drives->find_first_not_of('c') != std::string::npos)) {
      return Error(o + ": " + key + "=" + *drives + ": only c (the first hard disk) is supported");
    }
  }
  auto menu = kv->takeBool("menu", false);
  if (!menu) return menu.error();
  s.config.boot_menu = *menu;
  if (auto timeout = kv->take("reboot-timeout")) {
    if (*timeout == "-1") {
      s.config.boot_retry_ms = -1;
    } else {
      auto ms = parseUnsigned(*timeout);
      if (!ms || *ms >= 0xFFFFFFFFu) return Error(o + ": reboot-timeout=" + *timeout + " is not a time in ms (or -1)");
      s.config.boot_retry_ms = static_cast<int64_t>(*ms);
    }
  }
  auto strict = kv->takeBool("strict", false);
  if (!strict) return strict.error();
  if (*strict) return Error(o + ": strict=on is not supported");
  return kv->finish();
}

Status parseDevice(ParseState& state, const std::string& option, const std::string& arg) {
  auto kv = KeyValues::parse(option, arg, "driver");
  if (!kv) return kv.error();
  DeviceConfig device;
  device.driver = kv->take("driver").value_or("");
  if (device.driver.empty()) return Error(option + ": missing driver name");
  if (auto flags = kv->takeFlags(); !flags.empty()) return Error(option + ": property '" + flags[0] + "' needs a value");
  // The device model validates its own properties when the machine is built.
  for (auto& [key, value] : kv->takeRemaining()) device.properties[key] = value;
  state.config.devices.push_back(device);
  return {};
}

Status setFlag(bool& flag) {
  flag = true;
  return {};
}

const std::vector<OptionSpec>& optionTable() {
  static const std::vector<OptionSpec> table = {
      {"name", true, "NAME | guest=NAME   guest name",
       [](ParseState& s, const std::string& o, const std::string& a) -> Status {
         auto kv = KeyValues::parse(o, a, "guest");
         if (!kv) return kv.error();
         s.config.name = kv->take("guest").value_or("");
         (void)kv->take("debug-threads");
         (void)kv->take("process");
         return kv->finish();
       }},
      {"uuid", true, "UUID   the guest's UUID",
       [](ParseState& s, const std::string& o, const std::string& a) -> Status {
         bool valid = a.size() == 36;
         for (size_t i = 0; valid && i < a.size(); ++i) {
           bool dash = i == 8 || i == 13 || i == 18 || i == 23;
           valid = dash ? a[i] == '-' : std::isxdigit(static_cast<unsigned char>(a[i])) != 0;
         }
         if (!valid) return Error(o + ": '" + a + "' is not a UUID");
         s.config.uuid = a;
         return {};
       }},
      {"m", true, "SIZE[M|G]   guest memory", parseMemory},
      {"add-fd", true,
       "fd=N,set=S[,opaque=PATH]   inherited fd N joins fd set S; a file named /dev/fdset/S, or PATH,\n"
       "        is then served from the set (an fd whose access mode fits, dup'd) instead of opened:\n"
       "        -kernel, -initrd, -drive file=, qcow2 backing files, /dev/kvm, -pidfile",
       parseAddFd},
      {"smp", true, "N | cpus=N,sockets=,cores=,threads=   vCPUs", parseSmp},
      {"cpu", true, "host[,+feature|-feature...]   guest CPU model", parseCpu},
      {"machine", true, "TYPE[,accel=kvm][,PROP=VALUE...]   pc, q35 (PCI), microvm (virtio-mmio; acpi=, rtc=, pit=...)", parseMachine},
      {"M", true, "TYPE   same as -machine", parseMachine},
      {"accel", true, "kvm   the accelerator",
       [](ParseState&, const std::string& o, const std::string& a) -> Status {
         auto kv = KeyValues::parse(o, a, "accel");
         if (!kv) return kv.error();
         std::string accel = kv->take("accel").value_or("");
         if (accel != "kvm") return Error(o + ": accelerator '" + accel + "' is not supported (kvm)");
         return kv->finish();
       }},
      {"enable-kvm", false, "   use KVM (always on)", [](ParseState&, const std::string&, const std::string&) { return Status{}; }},
      {"kernel", true, "FILE   bzImage or PVH ELF kernel",
       [](ParseState& s, const std::string&, const std::string& a) { s.config.kernel = a; return Status{}; }},
      {"bios", true, "FILE   firmware image (default without -kernel: Debian's SeaBIOS)",
       [](ParseState& s, const std::string&, const std::string& a) { s.config.bios = a; return Status{}; }},
      {"boot", true, "[order=c][,menu=on|off][,reboot-timeout=MS]   firmware boot: the first hard disk, the boot menu, retry", parseBoot},
      {"cdrom", true, "FILE   (not supported yet)",
       [](ParseState&, const std::string& o, const std::string&) -> Status {
         return Error(o + ": CD-ROM drives are not supported yet (vmm has virtio-blk disks only: -drive file=...,if=virtio)");
       }},
      {"initrd", true, "FILE   initial ramdisk",
       [](ParseState& s, const std::string&, const std::string& a) { s.config.initrd = a; return Status{}; }},
      {"append", true, "CMDLINE   kernel command line",
       [](ParseState& s, const std::string&, const std::string& a) { s.config.append = a; return Status{}; }},
      {"serial", true, "stdio|null|none|unix:PATH,server=on,wait=off|file:PATH|chardev:ID", parseSerial},
      {"chardev", true, "socket,id=ID,path=P|fd=N,server=on,wait=off | stdio,id=ID | file,id=ID,path=P", parseChardev},
      {"qmp", true, "unix:PATH,server=on,wait=off   QMP monitor",
       [](ParseState& s, const std::string& o, const std::string& a) { return parseQmp(s, o, a, false); }},
      {"qmp-pretty", true, "unix:PATH,server=on,wait=off   QMP monitor, pretty-printed",
       [](ParseState& s, const std::string& o, const std::string& a) { return parseQmp(s, o, a, true); }},
      {"mon", true, "chardev=ID,mode=control   QMP monitor on a chardev", parseMon},
      {"device", true, "DRIVER[,prop=value...]   add a device", parseDevice},
      {"netdev", true, "tap,id=ID[,ifname=NAME|fd=N][,script=no,downscript=no]   a host network backend",
       [](ParseState& s, const std::string& o, const std::string& a) -> Status {
         auto kv = KeyValues::parse(o, a, "type");
         if (!kv) return kv.error();
         std::string type = kv->take("type").value_or("");
         if (type != "tap") return Error(o + ": type '" + type + "' is not supported (tap)");
         NetdevConfig netdev;
         netdev.id = kv->take("id").value_or("");
         if (netdev.id.empty()) return Error(o + ": id= is required");
         netdev.ifname = kv->take("ifname").value_or("");
         auto fd = takeFd(*kv);
         if (!fd) return fd.error();
         netdev.fd = fd->value_or(-1);
         for (const char* key : {"script", "downscript"}) {
           auto script = kv->take(key);
           if (script && *script != "no" && !script->empty()) {
             return Error(o + ": " + key + "=" + *script + ": vmm runs no interface scripts (use " + key + "=no)");
           }
         }
         if (auto vhost = kv->takeBool("vhost", false); !vhost || *vhost) {
           return vhost ? Error(o + ": vhost=on is not supported") : vhost.error();
         }
         if (auto queues = kv->take("queues"); queues && *queues != "1") return Error(o + ": only queues=1 is supported");
         if (auto st = kv->finish(); !st) return st;
         if (s.config.findNetdev(netdev.id)) return Error(o + ": duplicate netdev id '" + netdev.id + "'");
         s.config.netdevs.push_back(netdev);
         return {};
       }},
      {"drive", true, "file=PATH[,format=raw|qcow2][,if=virtio|none][,readonly=on][,cache=MODE][,id=ID]   a disk",
       [](ParseState& s, const std::string& o, const std::string& a) { return parseDrive(o, a, s.config, s.drive_index++); }},
      {"blockdev", true, "driver=file|raw|qcow2,node-name=N,...   a block node (attach with -device virtio-blk-pci,drive=N)",
       [](ParseState& s, const std::string& o, const std::string& a) -> Status {
         auto node = parseBlockdev(o, a);
         if (!node) return node.error();
         s.blockdevs.push_back(std::move(*node));
         return {};
       }},
      {"S", false, "   start paused (prelaunch) until QMP cont",
       [](ParseState& s, const std::string&, const std::string&) { return setFlag(s.config.start_paused); }},
      {"incoming", true, "unix:PATH|tcp:HOST:PORT|fd:N|exec:CMD|defer   wait for a migration stream instead of booting",
       [](ParseState& s, const std::string& o, const std::string& a) -> Status {
         if (a.empty()) return Error(o + ": a URI or 'defer' is needed");
         s.config.incoming = a;
         return {};
       }},
      {"no-reboot", false, "   exit instead of rebooting",
       [](ParseState& s, const std::string&, const std::string&) { return setFlag(s.config.no_reboot); }},
      {"no-shutdown", false, "   keep running after guest power-off (status shutdown)",
       [](ParseState& s, const std::string&, const std::string&) { return setFlag(s.config.no_shutdown); }},
      {"sandbox", true, "on|off[,obsolete=deny][,elevateprivileges=deny][,spawn=deny][,resourcecontrol=deny]   seccomp confinement of the worker's threads",
       parseSandbox},
      {"daemonize", false, "   detach once ready",
       [](ParseState& s, const std::string&, const std::string&) { return setFlag(s.config.daemonize); }},
      {"pidfile", true, "FILE   write the pid to FILE",
       [](ParseState& s, const std::string&, const std::string& a) { s.config.pidfile = a; return Status{}; }},
      {"nographic", false, "   no display; serial on stdio",
       [](ParseState& s, const std::string&, const std::string&) { return setFlag(s.nographic); }},
      {"display", true, "none",
       [](ParseState&, const std::string& o, const std::string& a) -> Status {
         if (a != "none") return Error(o + ": display '" + a + "' is not supported (none)");
         return {};
       }},
      {"vga", true, "none",
       [](ParseState&, const std::string& o, const std::string& a) -> Status {
         if (a != "none") return Error(o + ": vga '" + a + "' is not supported (none)");
         return {};
       }},
      {"nodefaults", false, "   no default devices",
       [](ParseState& s, const std::string&, const std::string&) { return setFlag(s.nodefaults); }},
  };
  return table;
}

Status resolveChardevReferences(const MachineConfig& config) {
  auto check = [&](const std::string& id, const char* user) -> Status {
    if (!config.findChardev(id)) return Error(std::string(user) + ": chardev '" + id + "' not found");
    return {};
  };
  for (const auto& serial : config.serials) {
    if (auto st = check(serial.chardev_id, "-serial"); !st) return st;
  }
  for (const auto& monitor : config.monitors) {
    if (auto st = check(monitor.chardev_id, "-mon"); !st) return st;
  }
  return {};
}

}  // namespace

Result<MachineConfig> parseCommandLine(const std::vector<std::string>& args) {
  ParseState state;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view word = args[i];
    if (!word.empty() && word[0] != '-') {
      // A disk image, as in `qemu-system-x86_64 disk.qcow2`; QEMU makes it an IDE disk, here it
      // is a virtio-blk one (there is no IDE controller).
      std::string escaped;
      for (char c : word) escaped += c == ',' ? std::string(",,") : std::string(1, c);
      if (auto st = parseDrive(args[i], "file=" + escaped + ",if=virtio", state.config, state.drive_index++); !st) return st.error();
      continue;
    }
    if (word.size() < 2) return Error("'" + args[i] + "': expected an option");
    word.remove_prefix(word.rfind("--", 0) == 0 ? 2 : 1);
    const auto& table = optionTable();
    auto spec = std::find_if(table.begin(), table.end(), [&](const OptionSpec& s) { return word == s.name; });
    std::string option = "-" + std::string(word);
    if (spec == table.end()) return Error(option + ": invalid option");
    std::string argument;
    if (spec->takes_argument) {
      if (i + 1 >= args.size()) return Error(option + ": requires an argument");
      argument = args[++i];
    }
    if (auto st = spec->handle(state, option, argument); !st) return st.error();
  }
  if (!state.serial_given && !state.nodefaults && state.nographic) {
    if (auto st = parseSerial(state, "-nographic", "stdio"); !st) return st.error();
  }
  if (auto st = resolveChardevReferences(state.config); !st) return st.error();
  if (auto st = resolveMachineProperties(state.config); !st) return st.error();
  if (auto st = resolveBlockdevs(state.blockdevs, state.config); !st) return st.error();
  if (!state.config.initrd.empty() && state.config.kernel.empty()) return Error("-initrd needs -kernel");
  if (!state.config.append.empty() && state.config.kernel.empty()) return Error("-append needs -kernel");
  if (!state.config.kernel.empty() && !state.config.bios.empty()) {
    return Error("-bios and -kernel: vmm boots a -kernel directly, without firmware; give one of them");
  }
  return std::move(state.config);
}

std::string usageText() {
  std::string text = "usage: vmm [options] [disk-image]   (a QEMU-compatible subset of qemu-system-x86_64's options;\n"
                     "  without -kernel the machine boots through SeaBIOS; a disk-image is a virtio-blk disk)\n";
  for (const auto& spec : optionTable()) {
    text += "  -" + std::string(spec.name) + " " + spec.help + "\n";
  }
  return text;
}

}  // namespace vmmd::config
