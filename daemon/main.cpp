// vmmd: the VM manager daemon. Opens the store, re-attaches to the workers that survived the last
// vmmd, starts autostart VMs, serves the control socket and tells systemd it is ready.
// SIGTERM/SIGINT end vmmd but never its guests: workers run in their own sessions and a later
// vmmd re-attaches to them.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <uv.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/unique_fd.h"
#include "base/uv_handle.h"
#include "daemon/access/open_as_owner.h"
#include "daemon/launch/worker_files.h"
#include "daemon/server/authorization.h"
#include "daemon/network/network_manager.h"
#include "daemon/server/control_commands.h"
#include "daemon/server/control_socket.h"
#include "daemon/server/network_commands.h"
#include "daemon/server/options.h"
#include "daemon/server/systemd_integration.h"
#include "daemon/store/store.h"
#include "daemon/supervisor/supervisor.h"
#include "qmp/uv_server.h"

using namespace vmmd;
using namespace vmmd::daemon;

namespace {

Status makeDir(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Error("create " + path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
  return {};
}

// One vmmd per state dir: two daemons supervising the same workers would fight over them.
Result<UniqueFd> lockStateDir(const std::string& state_dir) {
  std::string path = state_dir + "/vmmd.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
  if (!fd) return Error::fromErrno("open " + path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) return Error("another vmmd is running on " + state_dir + " (" + path + " is locked)");
    return Error::fromErrno("lock " + path);
  }
  return fd;
}

int fail(const std::string& message) {
  vmmd::log::error(message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  vmmd::log::setProgram("vmmd");
  vmmd::log::setLevelFromEnvironment("VMMD_LOG");
  std::vector<std::string> args(argv, argv + argc);
  auto options = parseDaemonOptions(args);
  if (!options) return std::fprintf(stderr, "vmmd: %s\n%s", options.error().message().c_str(), daemonUsage().c_str()), 2;
  if (options->help) return std::fputs(daemonUsage().c_str(), stdout), 0;
  if (options->release_cgroups) {
    auto released = CgroupTree::releaseFromControlProcess();
    if (!released) return fail("--release-cgroups: " + released.error().message());
    log::info("released the cgroup controllers of " + *released + " for the next vmmd");
    return 0;
  }
  if (options->vmm.empty()) {
    auto vmm = findWorkerBinary("/proc/self/exe");
    if (!vmm) return fail(vmm.error().message());
    options->vmm = *vmm;
  }
  if (options->img.empty()) {
    // Only snapshots of stopped VMs need it: a vmmd without it runs, and says why such a command fails.
    auto img = findImageTool("/proc/self/exe");
    options->img = img ? *img : "vmm-img";
  }
  std::optional<gid_t> gid;
  if (options->group) {
    auto resolved = resolveGroup(*options->group);
    if (!resolved) return fail(resolved.error().message());
    gid = *resolved;
  }
  if (auto st = makeDir(options->state_dir, 0750); !st) return fail(st.error().message());
  if (auto st = makeDir(options->run_dir, 0750); !st) return fail(st.error().message());
  // The group reaches the control socket (and consoles) through the run dir.
  if (gid && ::chown(options->run_dir.c_str(), static_cast<uid_t>(-1), *gid) < 0) {
    return fail(Error::fromErrno("chown " + options->run_dir).message());
  }
  auto lock = lockStateDir(options->state_dir);
  if (!lock) return fail(lock.error().message());
  auto store = Store::open(options->state_dir + "/vmmd.db");
  if (!store) return fail(store.error().message());

  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    // Before the supervisor, which asks it for taps and answers its users query.
    NetworkManager networks(&loop, *store, NetworkManagerConfig{options->state_dir});
    SupervisorConfig config{options->run_dir, options->vmm, gid};
    config.networks = &networks;
    config.snapshot_dir = options->state_dir + "/snapshots";
    config.img_tool = options->img;
    if (options->kvm_device != kKvmDevice) {
      config.open_device = [device = options->kvm_device](const std::string&, int flags) { return openPlainFile(device, flags); };
    }
    if (auto vmctl = findVmctl("/proc/self/exe")) config.remote_vmctl = *vmctl;
    // Every file a worker gets is opened as the VM's owner would open it (security model, README).
    config.open_file_as = [](const Owner& owner) -> FileOpener { return ownerFileOpener(owner); };
    if (::geteuid() == 0) {
      config.worker_ids = options->worker_ids;
      log::info("workers run as uids " + std::to_string(options->worker_ids.base) + ".." +
                std::to_string(options->worker_ids.base + options->worker_ids.count - 1) + ", one per VM, without capabilities");
    } else {
      log::info("not root: workers run as vmmd's own uid " + std::to_string(::geteuid()));
    }
    if (auto tree = CgroupTree::forThisProcess()) {
      log::info("workers run in cgroups under " + tree->dir() + " (vmmd itself in " + tree->dir() + "/vmmd)");
      config.cgroups = std::move(*tree);
    } else {
      log::warning("no per-VM cgroup limits (definitions' \"limits\" are not applied): " + tree.error().message());
    }
    std::optional<CgroupTree> cgroups = config.cgroups;
    Supervisor supervisor(&loop, *store, std::move(config));
    qmp::CommandRegistry registry;
    registerControlCommands(registry, supervisor);
    registerNetworkCommands(registry, networks);
    qmp::UvServerOptions server_options;
    server_options.maxMessageBytes = kMaxControlMessageBytes;
    server_options.session.maxTokens = kMaxControlMessageTokens;
    server_options.idleTimeoutMs = uint64_t{options->client_idle_timeout_s} * 1000;
    qmp::UvServer server(&loop, registry, server_options);
    // Each client hears about its own VMs only (root about all).
    supervisor.onStateChange = [&server, &supervisor](const std::string& vm, VmState state, const std::string& reason) {
      qmp::Json data = stateChangeData(vm, state, reason);
      std::string line = qmp::formatEvent("VM_STATE_CHANGE", &data);
      auto owner = supervisor.ownerOf(vm);
      server.forEachSession([&](qmp::Session& session) {
        if (owner ? mayAccess(callerOf(session), *owner) : callerOf(session).isRoot()) session.sendEvent(line);
      });
    };
    ControlSocket control(&loop, server, ControlSocketLimits{options->max_clients_per_user});
    // A migration's source that hangs up before its commit will never send it.
    control.onClientGone = [&supervisor](qmp::Session& session) { supervisor.sourceGone(session.id()); };
    if (auto fd = takeActivatedSocket()) {
      if (auto st = control.adopt(*fd); !st) return fail(st.error().message());
      log::info("serving the socket passed by systemd");
    } else if (auto st = control.listen(options->socket, gid); !st) {
      return fail(st.error().message());
    }
    log::info("state " + store->path() + ", run dir " + options->run_dir + ", worker " + options->vmm +
            ", control socket " + options->socket);

    // Networks first: autostart VMs may have NICs on autostart networks.
    if (::geteuid() == 0) networks.recover();
    supervisor.recover();

    auto stop = [](uv_signal_t* handle, int signum) {
      log::info(std::string("stopping on ") + ::strsignal(signum) + "; guests keep running");
      uv_stop(handle->loop);
    };
    auto sigterm = makeUvHandle<uv_signal_t>();
    auto sigint = makeUvHandle<uv_signal_t>();
    uv_signal_init(&loop, sigterm.get());
    uv_signal_init(&loop, sigint.get());
    uv_signal_start(sigterm.get(), stop, SIGTERM);
    uv_signal_start(sigint.get(), stop, SIGINT);

    if (auto st = notifySystemd("READY=1\nSTATUS=serving " + options->socket); !st) log::warning(st.error().message());
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)notifySystemd("STOPPING=1");
    if (cgroups) {
      if (auto st = cgroups->release(); !st) log::warning("cgroups: " + st.error().message());
    }
    server.close();
  }
  // Let libuv finish closing every handle the objects above gave back to it.
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_walk(&loop, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}
