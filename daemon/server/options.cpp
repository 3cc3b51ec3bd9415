#include "daemon/server/options.h"

#include <grp.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "base/parse.h"

namespace vmmd::daemon {
namespace {

Result<std::string> absolute(const std::string& option, const std::string& path) {
  if (path.empty()) return Error(option + ": empty path");
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  if (ec) return Error(option + ": " + path + ": " + ec.message());
  return abs.lexically_normal().string();
}

}  // namespace

std::string daemonUsage() {
  return "usage: vmmd [--state-dir DIR] [--run-dir DIR] [--socket PATH] [--group NAME] [--vmm PATH] [--img PATH]\n"
         "            [--kvm PATH] [--worker-ids BASE:COUNT] [--max-clients-per-user N] [--client-idle-timeout S] [--foreground]\n"
         "       vmmd --release-cgroups\n"
         "  --state-dir DIR  where vmmd.db lives (default /var/lib/vmmd)\n"
         "  --run-dir DIR    per-VM sockets and logs (default /run/vmmd)\n"
         "  --socket PATH    control socket (default RUN_DIR/vmmd.sock; systemd socket activation overrides)\n"
         "  --group NAME     group owning the control socket (mode 0660): a name or a numeric gid\n"
         "  --max-clients-per-user N  control connections one non-root uid may hold (default 64)\n"
         "  --client-idle-timeout S   drop a client that sent an unfinished message or nothing for S s (default 60)\n"
         "  --vmm PATH       worker binary (default: vmm next to vmmd, then PATH)\n"
         "  --img PATH       image tool for snapshots of stopped VMs (default: vmm-img next to vmmd, then PATH)\n"
         "  --kvm PATH       the KVM device vmmd opens and hands to each worker (default /dev/kvm)\n"
         "  --worker-ids BASE:COUNT  uids/gids for workers, one per running VM, when vmmd is root\n"
         "                   (default 1879048192:65536)\n"
         "  --foreground     log to the terminal; without it vmmd still does not fork (systemd Type=notify)\n"
         "  --release-cgroups  only disable the controllers vmmd enabled in its unit's cgroup, then exit\n"
         "                   (systemd's ExecStopPost=, so that a vmmd killed by SIGKILL can be restarted)\n";
}

Result<DaemonOptions> parseDaemonOptions(const std::vector<std::string>& argv) {
  DaemonOptions options;
  std::optional<std::string> socket;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    auto value = [&](const std::string& name) -> Result<std::string> {
      std::string prefix = name + "=";
      if (arg.rfind(prefix, 0) == 0) return arg.substr(prefix.size());
      if (i + 1 >= argv.size()) return Error(name + ": needs a value");
      return argv[++i];
    };
    auto is = [&](const std::string& name) { return arg == name || arg.rfind(name + "=", 0) == 0; };
    if (arg == "--help" || arg == "-h") {
      options.help = true;
    } else if (arg == "--release-cgroups") {
      options.release_cgroups = true;
    } else if (arg == "--foreground") {
      options.foreground = true;
    } else if (is("--worker-ids")) {
      auto v = value("--worker-ids");
      if (!v) return v.error();
      auto range = parseWorkerIdRange(*v);
      if (!range) return range.error();
      options.worker_ids = *range;
    } else if (is("--max-clients-per-user") || is("--client-idle-timeout")) {
      std::string name = arg.substr(0, arg.find('='));
      auto v = value(name);
      if (!v) return v.error();
      auto n = parseUnsigned(*v);
      if (!n || *n < 1 || *n > 1000000) return Error(name + ": expected a number from 1 to 1000000, got '" + *v + "'");
      (name == "--max-clients-per-user" ? options.max_clients_per_user : options.client_idle_timeout_s) = static_cast<uint32_t>(*n);
    } else if (is("--state-dir") || is("--run-dir") || is("--socket") || is("--vmm") || is("--img") || is("--kvm") ||
               is("--group")) {
      std::string name = arg.substr(0, arg.find('='));
      auto v = value(name);
      if (!v) return v.error();
      if (name == "--group") {
        if (v->empty()) return Error("--group: empty group name");
        options.group = *v;
        continue;
      }
      auto abs = absolute(name, *v);
      if (!abs) return abs.error();
      if (name == "--state-dir") options.state_dir = *abs;
      else if (name == "--run-dir") options.run_dir = *abs;
      else if (name == "--socket") socket = *abs;
      else if (name == "--img") options.img = *abs;
      else if (name == "--kvm") options.kvm_device = *abs;
      else options.vmm = *abs;
    } else {
      return Error("unknown argument '" + arg + "'");
    }
  }
  options.socket = socket.value_or(options.run_dir + "/vmmd.sock");
  return options;
}

Result<gid_t> resolveGroup(const std::string& name) {
  // A number is a gid (a group that exists in no group database, e.g. in a container or a test).
  if (auto gid = parseUnsigned(name); gid && *gid < 0xffffffffu) return static_cast<gid_t>(*gid);
  struct group* g = ::getgrnam(name.c_str());
  if (!g) return Error("--group: no group named '" + name + "'");
  return g->gr_gid;
}

namespace {

// `name` next to `self_exe`, or at `build_dir`/`name` beside its directory (the build tree), else
// on PATH.
Result<std::string> findBinary(const std::string& self_exe, const std::string& name, const std::string& build_dir,
                               const std::string& option) {
  std::error_code ec;
  auto self = std::filesystem::canonical(self_exe, ec);
  if (!ec) {
    for (auto candidate : {self.parent_path() / name, self.parent_path().parent_path() / build_dir / name}) {
      if (::access(candidate.c_str(), X_OK) == 0 && std::filesystem::is_regular_file(candidate, ec)) return candidate.string();
    }
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return Error("cannot find '" + name + "' next to vmmd or on PATH (use " + option + ")");
}

}  // namespace

// In the build tree vmmd is build/daemon/vmmd, the worker build/vmm/vmm, vmm-img build/storage/vmm-img.
Result<std::string> findWorkerBinary(const std::string& self_exe) {
  auto found = findBinary(self_exe, "vmm", "vmm", "--vmm");
  if (!found) return Error("cannot find the worker binary 'vmm' next to vmmd or on PATH (use --vmm)");
  return found;
}

Result<std::string> findImageTool(const std::string& self_exe) { return findBinary(self_exe, "vmm-img", "storage", "--img"); }

Result<std::string> findVmctl(const std::string& self_exe) { return findBinary(self_exe, "vmctl", "cli", "vmctl= in the destination"); }

}  // namespace vmmd::daemon
