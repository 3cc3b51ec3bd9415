#include "vmm/monitor/qmp_monitor.h"

#include <cstdio>

#include "vmm/backends/chardev.h"
#include "vmm/monitor/block_snapshot.h"
#include "vmm/monitor/monitored_vm.h"
#include "vmm/monitor/qmp_fds.h"
#include "vmm/monitor/qmp_migration.h"
#include "vmm/monitor/query_stats.h"

namespace vmmd {
namespace {

using qmp::ArgType;
using qmp::CommandResult;
using qmp::Json;
using qmp::JsonValue;
using qmp::QmpError;

Json emptyObject() { return qmp::jsonObject(); }

Json versionObject() {
  auto parsed = qmp::parseJson(qmpVersionJson());
  return std::move(*parsed);
}

void put(Json& object, const char* key, JsonValue value) {
  object.AddMember(JsonValue(key, object.GetAllocator()), value, object.GetAllocator());
}

void putString(Json& object, const char* key, std::string_view value) {
  put(object, key, qmp::jsonString(value, object.GetAllocator()));
}

}  // namespace

std::string qmpVersionJson() {
  char text[160];
  std::snprintf(text, sizeof text, R"({"qemu": {"micro": %d, "minor": %d, "major": %d}, "package": "%s"})", kQemuCompatMicro,
                kQemuCompatMinor, kQemuCompatMajor, kVmmPackage);
  return text;
}

QmpMonitor::QmpMonitor(uv_loop_t* loop, MonitoredVm& vm) : loop_(loop), vm_(vm) {
  registerSchema();
  registerCommands();
}

QmpMonitor::~QmpMonitor() { close(); }

Status QmpMonitor::listen(const config::ChardevConfig& chardev, bool pretty) {
  (void)pretty;  // replies are always compact, which every QMP client parses
  auto listener = openSocketListener("-qmp", chardev);
  if (!listener) return listener.error();
  qmp::UvServerOptions options;
  options.session.versionJson = qmpVersionJson();
  options.maxPassedFds = kMaxPassedFds;  // getfd
  auto server = std::make_unique<qmp::UvServer>(loop_, registry_, options);
  // A socket passed by fd (vmmd's) stays where its owner bound it; one we bound goes with us.
  if (auto st = server->adoptListeningFd(listener->release(), chardev.fd < 0 ? chardev.path : ""); !st) {
    return st.error().withContext("-qmp");
  }
  servers_.push_back(std::move(server));
  return {};
}

void QmpMonitor::close() {
  throttle_windows_.clear();  // their events held are dropped with the clients
  throttle_ = {};
  for (auto& server : servers_) server->close();
  servers_.clear();
}

void QmpMonitor::event(std::string_view name, const JsonValue* data) {
  if (servers_.empty()) return;
  std::string line = qmp::formatEvent(name, data);
  if (auto rule = EventThrottle::ruleFor(name)) {
    std::string key(name);
    if (rule->key_member && data && data->IsObject()) {
      auto member = data->FindMember(rule->key_member);
      if (member != data->MemberEnd() && member->value.IsString()) {
        key += '/';
        key.append(member->value.GetString(), member->value.GetStringLength());
      }
    }
    if (!throttle_.admit(key, line)) return;  // held: the window's timer sends the last one
    openThrottleWindow(key, rule->period);
  }
  broadcast(line);
}

void QmpMonitor::broadcast(const std::string& line) {
  for (auto& server : servers_) server->broadcastEventLine(line);
}

void QmpMonitor::openThrottleWindow(const std::string& key, std::chrono::milliseconds period) {
  auto window = std::make_unique<ThrottleWindow>(ThrottleWindow{this, key, period, makeUvHandle<uv_timer_t>()});
  uv_timer_init(loop_, window->timer.get());
  window->timer->data = window.get();
  uv_timer_start(
      window->timer.get(),
      [](uv_timer_t* timer) {
        auto* ended = static_cast<ThrottleWindow*>(timer->data);
        ended->monitor->throttleWindowEnded(std::string(ended->key));
      },
      static_cast<uint64_t>(period.count()), static_cast<uint64_t>(period.count()));
  throttle_windows_[key] = std::move(window);
}

void QmpMonitor::throttleWindowEnded(const std::string& key) {
  if (auto held = throttle_.windowEnded(key)) {
    broadcast(*held);  // the repeating timer opens the next window
  } else {
    throttle_windows_.erase(key);  // closes the timer (from its own callback: libuv allows it)
  }
}

void QmpMonitor::causeEvent(std::string_view name, bool guest, std::string_view reason) {
  Json data = emptyObject();
  put(data, "guest", JsonValue(guest));
  putString(data, "reason", reason);
  event(name, &data);
}

void QmpMonitor::registerSchema() {
  registry_.addEnum("RunState", {"debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate", "prelaunch",
                                 "finish-migrate", "restore-vm", "running", "save-vm", "shutdown", "suspended", "watchdog",
                                 "guest-panicked", "colo"});
  registry_.addEnum("ShutdownCause", {"none", "host-error", "host-qmp-quit", "host-qmp-system-reset", "host-signal",
                                      "host-ui", "guest-shutdown", "guest-reset", "guest-panic", "subsystem-reset",
                                      "snapshot-load"});
  registry_.addObject("StatusInfo", {{"running", "bool"}, {"singlestep", "bool"}, {"status", "RunState"}});
  registry_.addObject("VersionTriple", {{"major", "int"}, {"minor", "int"}, {"micro", "int"}});
  registry_.addObject("VersionInfo", {{"qemu", "VersionTriple"}, {"package", "str"}});
  registry_.addObject("NameInfo", {{"name", "str", true}});
  registry_.addObject("UuidInfo", {{"UUID", "str"}});
  registry_.addObject("KvmInfo", {{"enabled", "bool"}, {"present", "bool"}});
  registry_.addObject("TargetInfo", {{"arch", "str"}});
  registry_.addObject("MachineInfo", {{"name", "str"}, {"alias", "str", true}, {"is-default", "bool", true},
                                      {"cpu-max", "int"}, {"hotpluggable-cpus", "bool"}, {"numa-mem-supported", "bool"},
                                      {"deprecated", "bool"}, {"default-cpu-type", "str", true},
                                      {"default-ram-id", "str", true}});
  registry_.addObject("CpuInstanceProperties", {{"socket-id", "int", true}, {"core-id", "int", true}, {"thread-id", "int", true}});
  registry_.addObject("CpuInfoFast", {{"cpu-index", "int"}, {"qom-path", "str"}, {"thread-id", "int"},
                                      {"props", "CpuInstanceProperties", true}, {"target", "str"}});
  registry_.addObject("ChardevInfo", {{"label", "str"}, {"filename", "str"}, {"frontend-open", "bool"}});
  registry_.addObject("MemoryInfo", {{"base-memory", "int"}, {"plugged-memory", "int", true}});
  registry_.addObject("ImageInfo", {{"filename", "str"}, {"format", "str"}, {"virtual-size", "int"}, {"dirty-flag", "bool", true}});
  registry_.addObject("BlockdevCacheInfo", {{"writeback", "bool"}, {"direct", "bool"}, {"no-flush", "bool"}});
  registry_.addObject("BlockDeviceInfo", {{"file", "str"}, {"node-name", "str", true}, {"ro", "bool"}, {"drv", "str"},
                                          {"backing_file_depth", "int"}, {"encrypted", "bool"}, {"detect_zeroes", "str"},
                                          {"bps", "int"}, {"bps_rd", "int"}, {"bps_wr", "int"}, {"iops", "int"},
                                          {"iops_rd", "int"}, {"iops_wr", "int"}, {"image", "ImageInfo"},
                                          {"cache", "BlockdevCacheInfo"}, {"write_threshold", "int"}});
  registry_.addObject("BlockInfo", {{"device", "str"}, {"qdev", "str", true}, {"type", "str"}, {"removable", "bool"},
                                    {"locked", "bool"}, {"inserted", "BlockDeviceInfo", true}, {"io-status", "str", true}});
  registry_.addEvent("SHUTDOWN", {{"guest", "bool"}, {"reason", "ShutdownCause"}});
  registry_.addEvent("RESET", {{"guest", "bool"}, {"reason", "ShutdownCause"}});
  registry_.addEvent("POWERDOWN");
  registry_.addEvent("VSERPORT_CHANGE", {{"id", "str"}, {"open", "bool"}});
  registry_.addEnum("IoOperationType", {"read", "write"});
  registry_.addEvent("BLOCK_IO_ERROR", {{"device", "str"}, {"node-name", "str", true}, {"operation", "IoOperationType"},
                                        {"action", "str"}, {"nospace", "bool", true}, {"reason", "str"}});
  registry_.addEvent("STOP");
  registry_.addEvent("RESUME");
}

void QmpMonitor::registerCommands() {
  MonitoredVm& w = vm_;
  registerQueryStats(registry_, w);
  registerMigrationCommands(registry_, w);
  registerFdCommands(registry_, w);
  registerBlockSnapshotCommands(registry_, w, std::chrono::steady_clock::now());
  registry_.addSync({"query-status", {}, "StatusInfo"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    Json info = emptyObject();
    putString(info, "status", runStateName(w.state()));
    put(info, "singlestep", JsonValue(false));
    put(info, "running", JsonValue(w.state() == RunState::Running));
    return info;
  });
  registry_.addSync({"query-version", {}, "VersionInfo"},
                    [](const JsonValue&, qmp::Session&) -> CommandResult { return versionObject(); });
  registry_.addSync({"query-name", {}, "NameInfo"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    Json info = emptyObject();
    if (!w.config().name.empty()) putString(info, "name", w.config().name);
    return info;
  });
  registry_.addSync({"query-uuid", {}, "UuidInfo"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    Json info = emptyObject();
    putString(info, "UUID", w.config().uuid.empty() ? "00000000-0000-0000-0000-000000000000" : w.config().uuid);
    return info;
  });
  registry_.addSync({"query-kvm", {}, "KvmInfo"}, [](const JsonValue&, qmp::Session&) -> CommandResult {
    Json info = emptyObject();
    put(info, "enabled", JsonValue(true));
    put(info, "present", JsonValue(true));
    return info;
  });
  registry_.addSync({"query-target", {}, "TargetInfo"}, [](const JsonValue&, qmp::Session&) -> CommandResult {
    Json info = emptyObject();
    putString(info, "arch", "x86_64");
    return info;
  });
  registry_.addSync({"query-machines", {{"compat-props", ArgType::Bool, true}}, "[MachineInfo]"},
                    [](const JsonValue&, qmp::Session&) -> CommandResult {
                      Json list = qmp::jsonArray();
                      auto& alloc = list.GetAllocator();
                      // pc and q35 are one PCI machine model; microvm is the virtio-mmio one.
                      struct Entry {
                        const char* name;
                        const char* alias;
                        bool is_default;
                      };
                      for (const Entry& e : {Entry{"pc-i440fx-7.2", "pc", true}, Entry{"pc-q35-7.2", "q35", false},
                                             Entry{"microvm", nullptr, false}}) {
                        JsonValue m(rapidjson::kObjectType);
                        m.AddMember("name", JsonValue(e.name, alloc), alloc);
                        if (e.alias) m.AddMember("alias", JsonValue(e.alias, alloc), alloc);
                        if (e.is_default) m.AddMember("is-default", true, alloc);
                        m.AddMember("cpu-max", 254, alloc);
                        m.AddMember("hotpluggable-cpus", false, alloc);
                        m.AddMember("numa-mem-supported", false, alloc);
                        m.AddMember("deprecated", false, alloc);
                        m.AddMember("default-cpu-type", "host-x86_64-cpu", alloc);
                        m.AddMember("default-ram-id", "pc.ram", alloc);
                        list.PushBack(m, alloc);
                      }
                      return list;
                    });
  registry_.addSync({"query-cpus-fast", {}, "[CpuInfoFast]"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    Json list = qmp::jsonArray();
    auto& alloc = list.GetAllocator();
    auto threads = w.machine().vcpuThreadIds();
    for (size_t i = 0; i < threads.size(); ++i) {
      JsonValue cpu(rapidjson::kObjectType);
      cpu.AddMember("cpu-index", static_cast<int>(i), alloc);
      std::string path = "/machine/unattached/device[" + std::to_string(i) + "]";
      cpu.AddMember("qom-path", qmp::jsonString(path, alloc), alloc);
      cpu.AddMember("thread-id", threads[i], alloc);
      JsonValue props(rapidjson::kObjectType);
      // One socket of N cores (QEMU 7.2's -smp N topology, and what our CPUID leaf 0xB says).
      props.AddMember("core-id", static_cast<int>(i), alloc);
      props.AddMember("thread-id", 0, alloc);
      props.AddMember("socket-id", 0, alloc);
      cpu.AddMember("props", props, alloc);
      cpu.AddMember("target", "x86_64", alloc);
      list.PushBack(cpu, alloc);
    }
    return list;
  });
  registry_.addSync({"query-chardev", {}, "[ChardevInfo]"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    Json list = qmp::jsonArray();
    auto& alloc = list.GetAllocator();
    for (const auto& info : w.chardevInfo()) {
      JsonValue c(rapidjson::kObjectType);
      c.AddMember("frontend-open", info.open, alloc);
      c.AddMember("filename", qmp::jsonString(info.filename, alloc), alloc);
      c.AddMember("label", qmp::jsonString(info.label, alloc), alloc);
      list.PushBack(c, alloc);
    }
    return list;
  });
  registry_.addSync({"query-memory-size-summary", {}, "MemoryInfo"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    Json info = emptyObject();
    put(info, "base-memory", JsonValue(static_cast<uint64_t>(w.config().memory_bytes)));
    put(info, "plugged-memory", JsonValue(0));
    return info;
  });
  registry_.addSync({"query-block", {}, "[BlockInfo]"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    Json list = qmp::jsonArray();
    auto& alloc = list.GetAllocator();
    int index = 0;
    for (const auto& disk : w.machine().disks()) {
      JsonValue image(rapidjson::kObjectType);
      image.AddMember("virtual-size", disk.size, alloc);
      image.AddMember("filename", qmp::jsonString(disk.path, alloc), alloc);
      image.AddMember("format", qmp::jsonString(disk.format, alloc), alloc);
      image.AddMember("dirty-flag", false, alloc);
      JsonValue cache(rapidjson::kObjectType);
      cache.AddMember("writeback", true, alloc);
      cache.AddMember("direct", disk.direct, alloc);
      cache.AddMember("no-flush", disk.no_flush, alloc);
      JsonValue inserted(rapidjson::kObjectType);
      inserted.AddMember("ro", disk.read_only, alloc);
      inserted.AddMember("drv", qmp::jsonString(disk.format, alloc), alloc);
      inserted.AddMember("encrypted", false, alloc);
      inserted.AddMember("detect_zeroes", "off", alloc);
      for (const char* limit : {"bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"}) {
        inserted.AddMember(JsonValue(limit, alloc), JsonValue(0), alloc);
      }
      inserted.AddMember("file", qmp::jsonString(disk.path, alloc), alloc);
      inserted.AddMember("node-name", qmp::jsonString(disk.device, alloc), alloc);
      inserted.AddMember("backing_file_depth", 0, alloc);
      inserted.AddMember("image", image, alloc);
      inserted.AddMember("cache", cache, alloc);
      inserted.AddMember("write_threshold", 0, alloc);
      JsonValue info(rapidjson::kObjectType);
      info.AddMember("device", qmp::jsonString(disk.device, alloc), alloc);
      info.AddMember("locked", false, alloc);
      info.AddMember("removable", false, alloc);
      info.AddMember("inserted", inserted, alloc);
      std::string qdev = "/machine/peripheral-anon/device[" + std::to_string(index++) + "]/virtio-backend";
      info.AddMember("qdev", qmp::jsonString(qdev, alloc), alloc);
      info.AddMember("type", "unknown", alloc);
      info.AddMember("io-status", "ok", alloc);
      list.PushBack(info, alloc);
    }
    return list;
  });

  registry_.addSync({"set_link", {{"name", ArgType::Str}, {"up", ArgType::Bool}}},
                    [&w](const JsonValue& args, qmp::Session&) -> CommandResult {
                      std::string name(qmp::jsonStringView(args["name"]));
                      if (!w.machine().setLink(name, args["up"].GetBool())) {
                        return QmpError{"DeviceNotFound", "Device '" + name + "' not found"};
                      }
                      return emptyObject();
                    });
  registry_.addSync({"stop"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    w.stop();
    return emptyObject();
  });
  registry_.addSync({"cont"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    if (auto st = w.cont(); !st) return QmpError::generic(st.error().message());
    return emptyObject();
  });
  registry_.addSync({"system_powerdown"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    w.powerButton();
    return emptyObject();
  });
  registry_.addSync({"system_reset"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    if (auto st = w.systemReset(); !st) return QmpError::generic(st.error().message());
    return emptyObject();
  });
  registry_.addSync({"quit"}, [&w](const JsonValue&, qmp::Session&) -> CommandResult {
    w.requestQuit();
    return emptyObject();
  });
  registry_.addSync({"human-monitor-command", {{"command-line", ArgType::Str}, {"cpu-index", ArgType::Int, true}}, "str"},
                    [this](const JsonValue& args, qmp::Session&) -> CommandResult {
                      std::string line = std::string(qmp::jsonStringView(args["command-line"]));
                      std::string output = humanCommand(line);
                      Json text;
                      text.SetString(output.data(), static_cast<rapidjson::SizeType>(output.size()), text.GetAllocator());
                      return text;
                    });
}

// The human monitor's few commands that scripts commonly send through QMP.
std::string QmpMonitor::humanCommand(const std::string& line) {
  std::string command = line;
  while (!command.empty() && (command.back() == ' ' || command.back() == '\n')) command.pop_back();
  size_t start = command.find_first_not_of(' ');
  command = start == std::string::npos ? "" : command.substr(start);
  MonitoredVm& w = vm_;
  if (command == "info status") {
    switch (w.state()) {
      case RunState::Running: return "VM status: running\r\n";
      case RunState::Prelaunch: return "VM status: paused (prelaunch)\r\n";
      case RunState::Shutdown: return "VM status: paused (shutdown)\r\n";
      case RunState::InternalError: return "VM status: paused (internal-error)\r\n";
      case RunState::Paused: return "VM status: paused\r\n";
      case RunState::Inmigrate: return "VM status: paused (inmigrate)\r\n";
      case RunState::FinishMigrate: return "VM status: paused (finish-migrate)\r\n";
      case RunState::Postmigrate: return "VM status: paused (postmigrate)\r\n";
    }
  }
  if (command == "info version") {
    return std::to_string(kQemuCompatMajor) + "." + std::to_string(kQemuCompatMinor) + "." + std::to_string(kQemuCompatMicro) +
           " (" + kVmmPackage + ")\r\n";
  }
  if (command == "info cpus") {
    std::string out;
    auto threads = w.machine().vcpuThreadIds();
    for (size_t i = 0; i < threads.size(); ++i) {
      out += (i == 0 ? "* CPU #" : "  CPU #") + std::to_string(i) + ": thread_id=" + std::to_string(threads[i]) + "\r\n";
    }
    return out;
  }
  if (command == "info name") return w.config().name.empty() ? "" : w.config().name + "\r\n";
  if (command == "stop") {
    w.stop();
    return "";
  }
  if (command == "cont" || command == "c") {
    if (auto st = w.cont(); !st) return "Error: " + st.error().message() + "\r\n";
    return "";
  }
  if (command == "system_powerdown") {
    w.powerButton();
    return "";
  }
  if (command == "system_reset") {
    if (auto st = w.systemReset(); !st) return "Error: " + st.error().message() + "\r\n";
    return "";
  }
  if (command == "quit" || command == "q") {
    w.requestQuit();
    return "";
  }
  std::string word = command.substr(0, command.find(' '));
  if (word == "info") return "info " + command.substr(std::min(command.size(), size_t{5})) + ": unknown info command\r\n";
  return "unknown command: '" + word + "'\r\n";
}

}  // namespace vmmd
