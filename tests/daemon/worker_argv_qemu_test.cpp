// The argv vmmd generates is QEMU's: real qemu-system-x86_64 must accept it and run the guest.
// The only substitutions are the accelerator (TCG: the test must not depend on KVM) and the CPU
// model ("host" needs KVM), plus -S so that the console is connected before the guest prints.
// The guest is the project's probe, told by its command line to check the command line it got,
// print its marker and idle; the test then quits QEMU through the QMP socket of the argv.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <optional>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "daemon/definition/definition_json.h"
#include "daemon/launch/worker_argv.h"
#include "daemon/supervisor/worker_resources.h"
#include "qmp/unix_socket.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kTimeout = std::chrono::seconds(30);

UniqueFd connectUnix(const std::string& path) {
  auto fd = qmp::connectUnix(path);
  return fd ? std::move(*fd) : UniqueFd();
}

// Reads from `fd` into `seen` until it contains `needle`; false on timeout or EOF.
bool readUntil(int fd, std::string& seen, const std::string& needle) {
  auto deadline = Clock::now() + kTimeout;
  while (seen.find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return false;
    seen.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

bool sendText(int fd, const std::string& text) {
  return ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

// A QMP exchange: send one command, wait for the line with its "return".
std::string qmp(int fd, const std::string& command) {
  std::string seen;
  if (!sendText(fd, command + "\r\n") || !readUntil(fd, seen, "\"return\"")) return "<no reply> " + seen;
  readUntil(fd, seen, "\r\n");
  return seen;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

struct QemuRun {
  pid_t pid = -1;
  ~QemuRun() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// What the worker is given: its arguments and the fds it inherits from fd 3 on (the QMP listener
// first). Without passed fds: workerArgv alone, with the QMP listener made here.
struct WorkerStart {
  std::vector<std::string> args;
  std::vector<int> fds;
};

// `prefix` runs before QEMU (a network namespace with a tap for the NIC variant).
void runUnderQemu(const VmDefinition& def, const WorkerPaths& paths, const std::vector<std::string>& prefix,
                  const std::string& log, std::optional<WorkerStart> start = std::nullopt) {
  std::vector<std::string> argv = prefix;
  argv.push_back(QEMU_SYSTEM_X86_64);
  for (std::string arg : start ? start->args : workerArgv(def, paths)) {
    if (size_t at = arg.find(",accel=kvm"); argv.back() == "-machine" && at != std::string::npos) {
      arg.replace(at, 10, ",accel=tcg");
    }
    if (argv.back() == "-cpu") arg = "max";
    argv.push_back(std::move(arg));
  }
  argv.push_back("-S");
  std::filesystem::create_directories(paths.dir);
  // As vmmd: the QMP socket is bound and listening before QEMU starts, passed as kWorkerQmpFd.
  Result<UniqueFd> qmp_listener = UniqueFd();
  if (!start) {
    qmp_listener = qmp::listenUnix(paths.qmp_socket);
    ASSERT_TRUE(qmp_listener.ok()) << qmp_listener.error().message();
    start = WorkerStart{{}, {qmp_listener->get()}};
  }

  QemuRun qemu;
  qemu.pid = ::fork();
  ASSERT_GE(qemu.pid, 0);
  if (qemu.pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    // What WorkerProcess::spawn has libuv do: fd 3, 4... in QEMU, without close-on-exec (moved out
    // of the way first, so that no dup2 overwrites an fd still to be placed).
    std::vector<int> high;
    for (int fd : start->fds) high.push_back(::fcntl(fd, F_DUPFD, 100));
    for (size_t i = 0; i < high.size(); ++i) ::dup2(high[i], kWorkerQmpFd + static_cast<int>(i));
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }

  if (qmp_listener.ok()) qmp_listener->reset();  // QEMU holds it now: a connection cannot fail, however slowly it starts

  // Connecting succeeds at once; the greeting comes once QEMU has accepted the whole command line
  // and made its other sockets.
  UniqueFd monitor = connectUnix(paths.qmp_socket);
  ASSERT_TRUE(monitor) << "cannot connect to the passed QMP socket " << paths.qmp_socket;
  std::string greeting;
  if (!readUntil(monitor.get(), greeting, "\r\n")) {
    int status = 0;
    if (::waitpid(qemu.pid, &status, WNOHANG) == qemu.pid) qemu.pid = -1;
    FAIL() << "no QMP greeting (QEMU refused the argv?): " << greeting << "\n" << readFile(log);
  }
  EXPECT_NE(greeting.find("\"QMP\""), std::string::npos);
  UniqueFd console = connectUnix(paths.console_socket);
  ASSERT_TRUE(console) << "no console socket at " << paths.console_socket;
  if (def.agent) {
    EXPECT_TRUE(connectUnix(paths.qga_socket)) << "no agent socket at " << paths.qga_socket;
  }
  EXPECT_EQ(readFile(paths.pidfile), std::to_string(qemu.pid) + "\n");
  EXPECT_NE(qmp(monitor.get(), R"({"execute": "qmp_capabilities"})").find("\"return\": {}"), std::string::npos);
  // QEMU reports the passed socket by the path it is bound to.
  std::string chardevs = qmp(monitor.get(), R"({"execute": "query-chardev"})");
  EXPECT_NE(chardevs.find("\"filename\": \"unix:" + paths.qmp_socket + ",server=on\", \"label\": \"qmp\""),
            std::string::npos)
      << chardevs;

  // Every disk is there under its id, read-only where asked, with the right format.
  std::string block = qmp(monitor.get(), R"({"execute": "query-block"})");
  for (const DiskSpec& disk : def.disks) {
    std::string id = "\"device\": \"" + disk.id + "\"";
    size_t at = block.find(id);
    ASSERT_NE(at, std::string::npos) << block;
    std::string entry = block.substr(at, block.find("\"device\"", at + 1) - at);
    EXPECT_NE(entry.find("\"ro\": " + std::string(disk.readonly ? "true" : "false")), std::string::npos) << entry;
    EXPECT_NE(entry.find("\"drv\": \"" + std::string(toString(disk.format)) + "\""), std::string::npos) << entry;
    EXPECT_NE(entry.find("\"file\": \"" + disk.path + "\""), std::string::npos) << entry;
  }
  if (!def.nics.empty()) {
    std::string net = qmp(monitor.get(),
                          R"({"execute": "human-monitor-command", "arguments": {"command-line": "info network"}})");
    for (const NicSpec& nic : def.nics) EXPECT_NE(net.find("macaddr=" + nic.mac), std::string::npos) << net;
  }

  EXPECT_NE(qmp(monitor.get(), R"({"execute": "cont"})").find("\"return\""), std::string::npos);
  std::string output;
  // The probe checks its command line; a firmware boot shows SeaBIOS on the console, trying the disk.
  const char* mark = def.kernel ? "PROBE name=ready action=idle" : "Booting from Hard Disk";
  EXPECT_TRUE(readUntil(console.get(), output, mark)) << output << readFile(log);
  if (def.cmdline) {
    EXPECT_NE(output.find("value=\"" + *def.cmdline + "\""), std::string::npos) << output;
  }
  if (def.boot) {
    EXPECT_NE(output.find("SeaBIOS (version"), std::string::npos) << output;
  }

  // Clean stop through the socket the daemon will use: QEMU exits 0 and removes nothing we need.
  sendText(monitor.get(), "{\"execute\": \"quit\"}\r\n");
  int status = 0;
  ASSERT_EQ(::waitpid(qemu.pid, &status, 0), qemu.pid);
  qemu.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << readFile(log);
}

class WorkerArgvQemu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(VMMD_PROBE_ELF)) GTEST_SKIP() << "probe guest not built: " << VMMD_PROBE_ELF;
    if (!run(std::string(QEMU_SYSTEM_X86_64) + " -version")) GTEST_SKIP() << "no " << QEMU_SYSTEM_X86_64;
  }

  VmDefinition definition(const std::string& extra) {
    // A comma in a disk path and in the run dir exercise the ",," escaping end to end.
    auto def = parseDefinition(R"({"schema": 1, "name": "probe-vm", "memory": 64, "vcpus": 2, "kernel": ")" +
                               std::string(VMMD_PROBE_ELF) + R"(", "cmdline": "cmdline idle marker=argv", )" + extra +
                               "}");
    EXPECT_TRUE(def.ok()) << def.error().message();
    return def.ok() ? *def : VmDefinition{};
  }

  test_support::TempDir dir_;
};

TEST_F(WorkerArgvQemu, DisksAgentAndConsole) {
  std::string qcow2 = dir_.file("root,1.qcow2");
  std::string raw = dir_.file("seed.raw");
  ASSERT_TRUE(run("qemu-img create -f qcow2 '" + qcow2 + "' 16M")) << "qemu-img create";
  ASSERT_TRUE(run("qemu-img create -f raw '" + raw + "' 1M")) << "qemu-img create";
  VmDefinition def = definition(R"("agent": true, "disks": [{"path": ")" + qcow2 + R"(", "format": "qcow2"},
                                    {"id": "seed", "path": ")" + raw + R"(", "format": "raw", "readonly": true}])");
  auto paths = workerPathsFor(dir_.file("r,un"), def.name);
  ASSERT_TRUE(paths.ok()) << paths.error().message();
  runUnderQemu(def, *paths, {}, dir_.file("qemu.log"));
}

// "machine": "microvm": QEMU's microvm takes the argv (virtio-blk/-net/-serial-device on its
// virtio-mmio transports, no PCI) and boots the probe, whose console and agent socket are there.
TEST_F(WorkerArgvQemu, MicrovmDisksAndAgent) {
  std::string qcow2 = dir_.file("root,1.qcow2");
  std::string raw = dir_.file("seed.raw");
  ASSERT_TRUE(run("qemu-img create -f qcow2 '" + qcow2 + "' 16M")) << "qemu-img create";
  ASSERT_TRUE(run("qemu-img create -f raw '" + raw + "' 1M")) << "qemu-img create";
  VmDefinition def = definition(R"("machine": "microvm", "agent": true, "disks": [{"path": ")" + qcow2 +
                                R"(", "format": "qcow2"}, {"id": "seed", "path": ")" + raw + R"(", "format": "raw", "readonly": true}])");
  ASSERT_EQ(def.machine, MachineType::kMicrovm);
  auto paths = workerPathsFor(dir_.file("r,un"), def.name);
  ASSERT_TRUE(paths.ok()) << paths.error().message();
  runUnderQemu(def, *paths, {}, dir_.file("qemu.log"));
}

// The argv of a worker that gets everything as fds (supervisor/worker_resources.h): the sockets
// (fd=N), the pidfile (/proc/self/fd/N), the files and /dev/kvm (-add-fd ... opaque=PATH), a qcow2 with
// its backing file. QEMU accepts it and serves the sockets vmmd bound.
TEST_F(WorkerArgvQemu, EverythingPassedAsFds) {
  std::string base = dir_.file("base.raw");
  std::string top = dir_.file("top,1.qcow2");
  ASSERT_TRUE(run("qemu-img create -f raw '" + base + "' 1M")) << "qemu-img create";
  ASSERT_TRUE(run("qemu-img create -f qcow2 -b base.raw -F raw '" + top + "' 16M")) << "qemu-img create";
  VmDefinition def = definition(R"("agent": true, "disks": [{"path": ")" + top + R"(", "format": "qcow2"}])");
  auto paths = workerPathsFor(dir_.file("r,un"), def.name);
  ASSERT_TRUE(paths.ok()) << paths.error().message();
  std::filesystem::create_directories(paths->dir);
  // TCG needs no /dev/kvm: whatever stands in for it is passed the same way.
  auto no_kvm = [](const std::string&, int flags) { return openPlainFile("/dev/null", flags); };
  auto resources = prepareWorker(def, *paths, std::nullopt, openPlainFile, no_kvm);
  ASSERT_TRUE(resources.ok()) << resources.error().message();
  const std::vector<std::string>& args = resources->args;
  EXPECT_NE(std::find(args.begin(), args.end(), "fd=7,set=1,opaque=" + std::string(VMMD_PROBE_ELF)), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(), "fd=9,set=3,opaque=" + dir_.path() + "/base.raw"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(), "fd=10,set=4,opaque=/dev/kvm"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(), "/proc/self/fd/6"), args.end());
  runUnderQemu(def, *paths, {}, dir_.file("qemu.log"), WorkerStart{args, resources->fds.raw()});
}

// A definition without a kernel: QEMU takes the argv (the boot disk on its own -device with a
// bootindex, no -kernel) and its SeaBIOS prints on the VM's console and tries that disk (blank
// here: booting real images is the nested tier's, tests/nested/firmware.sh).
TEST_F(WorkerArgvQemu, FirmwareBootFromADisk) {
  std::string data = dir_.file("data.raw"), system = dir_.file("system.qcow2");
  ASSERT_TRUE(run("qemu-img create -f raw '" + data + "' 1M")) << "qemu-img create";
  ASSERT_TRUE(run("qemu-img create -f qcow2 '" + system + "' 16M")) << "qemu-img create";
  auto def = parseDefinition(R"({"schema": 1, "name": "fw-vm", "memory": 64, "disks": [{"path": ")" + data +
                             R"(", "format": "raw"}, {"id": "root", "path": ")" + system +
                             R"(", "format": "qcow2"}], "boot": {"order": ["root"]}})");
  ASSERT_TRUE(def.ok()) << def.error().message();
  auto paths = workerPathsFor(dir_.file("run"), def->name);
  ASSERT_TRUE(paths.ok()) << paths.error().message();
  runUnderQemu(*def, *paths, {}, dir_.file("qemu.log"));
}

TEST_F(WorkerArgvQemu, TapNicInANetworkNamespace) {
  // A tap needs CAP_NET_ADMIN; a private network namespace keeps the host's interfaces untouched.
  if (!run("unshare --net ip tuntap add dev vmmdtap0 mode tap")) GTEST_SKIP() << "cannot create a tap in a netns";
  VmDefinition def = definition(R"("nics": [{"ifname": "vmmdtap0", "mac": "52:54:00:12:34:56"}])");
  auto paths = workerPathsFor(dir_.file("run"), def.name);
  ASSERT_TRUE(paths.ok()) << paths.error().message();
  runUnderQemu(def, *paths,
               {"unshare", "--net", "sh", "-c", "ip tuntap add dev vmmdtap0 mode tap && exec \"$0\" \"$@\""},
               dir_.file("qemu.log"));
}

}  // namespace
}  // namespace vmmd::daemon
