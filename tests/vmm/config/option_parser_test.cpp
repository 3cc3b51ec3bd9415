#include "vmm/config/option_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace vmmd::config {
namespace {

using ::testing::HasSubstr;
using Args = std::vector<std::string>;
using Backend = ChardevConfig::Backend;

// Every command line needs a kernel; tests add their own options in front of it.
Args withKernel(Args args) {
  args.push_back("-kernel");
  args.push_back("vmlinuz");
  return args;
}

MachineConfig parseOk(const Args& args) {
  auto config = parseCommandLine(args);
  EXPECT_TRUE(config.ok()) << config.error().message();
  return config.ok() ? std::move(*config) : MachineConfig{};
}

std::string parseError(const Args& args) {
  auto config = parseCommandLine(args);
  EXPECT_FALSE(config.ok()) << "parsed without error";
  return config.ok() ? std::string() : config.error().message();
}

// The option names usageText() lists ("  -name ..." lines).
std::vector<std::string> optionsInUsage() {
  std::vector<std::string> names;
  std::istringstream lines(usageText());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("  -", 0) != 0) continue;
    names.push_back(line.substr(3, line.find(' ', 3) - 3));
  }
  return names;
}

TEST(ParseCommandLine, DefaultsMatchQemu) {
  MachineConfig c = parseOk(withKernel({}));
  EXPECT_EQ(c.kernel, "vmlinuz");
  EXPECT_EQ(c.memory_bytes, 128ull << 20);
  EXPECT_EQ(c.vcpus, 1u);
  EXPECT_EQ(c.machine_type, "pc");
  EXPECT_EQ(c.cpu.model, "host");
  EXPECT_TRUE(c.cpu.features.empty());
  EXPECT_TRUE(c.serials.empty());
  EXPECT_TRUE(c.monitors.empty());
  EXPECT_TRUE(c.chardevs.empty());
  EXPECT_FALSE(c.start_paused);
  EXPECT_FALSE(c.no_reboot);
  EXPECT_FALSE(c.no_shutdown);
  EXPECT_FALSE(c.daemonize);
  EXPECT_FALSE(c.sandbox);
}

// QEMU 7.2's -sandbox syntax; vmm's filter always denies the four optional groups, so asking
// for "allow" is refused by name rather than silently ignored.
TEST(ParseCommandLine, Sandbox) {
  EXPECT_TRUE(parseOk(withKernel({"-sandbox", "on"})).sandbox);
  EXPECT_TRUE(parseOk(withKernel({"-sandbox", "enable=on"})).sandbox);
  EXPECT_FALSE(parseOk(withKernel({"-sandbox", "off"})).sandbox);
  EXPECT_TRUE(parseOk(withKernel({"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"})).sandbox);
  EXPECT_EQ(parseError(withKernel({"-sandbox", "on,spawn=allow"})),
            "-sandbox: spawn=allow is not supported: vmm's filter always denies these calls (spawn=deny)");
  EXPECT_EQ(parseError(withKernel({"-sandbox", "on,elevateprivileges=children"})),
            "-sandbox: elevateprivileges=children is not supported: vmm's filter always denies these calls (elevateprivileges=deny)");
  EXPECT_EQ(parseError(withKernel({"-sandbox", "on,obsolete=maybe"})), "-sandbox: invalid argument for obsolete: 'maybe'");
  EXPECT_NE(parseError(withKernel({"-sandbox", "maybe"})).find("expects 'on' or 'off'"), std::string::npos);
  EXPECT_NE(parseError(withKernel({"-sandbox", "on,colour=red"})).find("colour"), std::string::npos);
}

TEST(ParseCommandLine, UsageListsEveryOptionOnce) {
  auto names = optionsInUsage();
  std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), names.size());
  for (const char* expected : {"name", "uuid", "m", "smp", "cpu", "machine", "M", "accel", "enable-kvm", "kernel",
                               "initrd", "append", "serial", "chardev", "qmp", "qmp-pretty", "mon", "device", "S",
                               "no-reboot", "no-shutdown", "daemonize", "pidfile", "nographic", "display", "vga",
                               "nodefaults"}) {
    EXPECT_TRUE(unique.count(expected)) << "usage does not list -" << expected;
  }
}

// One accepted sample per option and what it must produce. An option added to the table without
// a sample here fails EveryOptionInUsageIsAcceptedAndTakesEffect.
struct OptionSample {
  Args args;
  std::function<void(const MachineConfig&)> check;
};

const std::map<std::string, OptionSample>& optionSamples() {
  static const std::map<std::string, OptionSample> samples = {
      {"name", {{"-name", "guest=vm1,debug-threads=on"}, [](const MachineConfig& c) { EXPECT_EQ(c.name, "vm1"); }}},
      {"uuid",
       {{"-uuid", "5a3f1a4e-0c2b-4e8e-9d0a-1b2c3d4e5f60"},
        [](const MachineConfig& c) { EXPECT_EQ(c.uuid, "5a3f1a4e-0c2b-4e8e-9d0a-1b2c3d4e5f60"); }}},
      {"m", {{"-m", "1G"}, [](const MachineConfig& c) { EXPECT_EQ(c.memory_bytes, 1ull << 30); }}},
      {"add-fd",
       {{"-add-fd", "fd=9,set=1,opaque=/dev/kvm"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.add_fds.size(), 1u);
          EXPECT_EQ(c.add_fds[0].opaque, "/dev/kvm");
        }}},
      {"smp", {{"-smp", "3"}, [](const MachineConfig& c) { EXPECT_EQ(c.vcpus, 3u); }}},
      {"incoming", {{"-incoming", "unix:/run/mig.sock"}, [](const MachineConfig& c) { EXPECT_EQ(c.incoming, "unix:/run/mig.sock"); }}},
      {"cpu",
       {{"-cpu", "max,+vmx"},
        [](const MachineConfig& c) {
          EXPECT_EQ(c.cpu.model, "max");
          ASSERT_EQ(c.cpu.features.size(), 1u);
          EXPECT_EQ(c.cpu.features[0], (std::pair<std::string, bool>{"vmx", true}));
        }}},
      {"machine", {{"-machine", "q35,accel=kvm"}, [](const MachineConfig& c) { EXPECT_EQ(c.machine_type, "q35"); }}},
      {"M", {{"-M", "microvm"}, [](const MachineConfig& c) { EXPECT_EQ(c.machine_type, "microvm"); }}},
      {"accel", {{"-accel", "kvm"}, [](const MachineConfig&) {}}},
      {"enable-kvm", {{"-enable-kvm"}, [](const MachineConfig&) {}}},
      {"kernel", {{"-kernel", "/boot/bzImage"}, [](const MachineConfig& c) { EXPECT_EQ(c.kernel, "/boot/bzImage"); }}},
      {"initrd", {{"-initrd", "/boot/initrd"}, [](const MachineConfig& c) { EXPECT_EQ(c.initrd, "/boot/initrd"); }}},
      {"append",
       {{"-append", "console=ttyS0 quiet"}, [](const MachineConfig& c) { EXPECT_EQ(c.append, "console=ttyS0 quiet"); }}},
      {"serial",
       {{"-serial", "file:/tmp/serial.log"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.serials.size(), 1u);
          const ChardevConfig* chardev = c.findChardev(c.serials[0].chardev_id);
          ASSERT_NE(chardev, nullptr);
          EXPECT_EQ(chardev->backend, Backend::File);
          EXPECT_EQ(chardev->path, "/tmp/serial.log");
        }}},
      {"chardev",
       {{"-chardev", "null,id=n0"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.chardevs.size(), 1u);
          EXPECT_EQ(c.chardevs[0].id, "n0");
          EXPECT_EQ(c.chardevs[0].backend, Backend::Null);
        }}},
      {"qmp",
       {{"-qmp", "unix:/tmp/q.sock,server=on,wait=off"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.monitors.size(), 1u);
          EXPECT_FALSE(c.monitors[0].pretty);
          EXPECT_NE(c.findChardev(c.monitors[0].chardev_id), nullptr);
        }}},
      {"qmp-pretty",
       {{"-qmp-pretty", "unix:/tmp/q.sock,server=on,wait=off"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.monitors.size(), 1u);
          EXPECT_TRUE(c.monitors[0].pretty);
        }}},
      {"mon",
       {{"-chardev", "socket,id=m0,path=/tmp/m.sock,server=on,wait=off", "-mon", "chardev=m0,mode=control"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.monitors.size(), 1u);
          EXPECT_EQ(c.monitors[0].chardev_id, "m0");
        }}},
      {"device",
       {{"-device", "virtio-rng-pci,id=rng0"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.devices.size(), 1u);
          EXPECT_EQ(c.devices[0].driver, "virtio-rng-pci");
          EXPECT_EQ(c.devices[0].properties.at("id"), "rng0");
        }}},
      {"netdev",
       {{"-netdev", "tap,id=n0,ifname=tap7,script=no,downscript=no"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.netdevs.size(), 1u);
          EXPECT_EQ(c.netdevs[0].id, "n0");
          EXPECT_EQ(c.netdevs[0].ifname, "tap7");
          EXPECT_EQ(c.netdevs[0].fd, -1);
        }}},
      {"drive",
       {{"-drive", "file=/img/d.qcow2,format=qcow2,if=none,id=d0,readonly=on"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.drives.size(), 1u);
          EXPECT_EQ(c.drives[0].id, "d0");
          EXPECT_EQ(c.drives[0].path, "/img/d.qcow2");
          EXPECT_EQ(c.drives[0].format, "qcow2");
          EXPECT_TRUE(c.drives[0].read_only);
          EXPECT_TRUE(c.devices.empty());
        }}},
      {"blockdev",
       {{"-blockdev", "driver=file,node-name=f0,filename=/img/d.raw", "-blockdev", "driver=raw,node-name=d0,file=f0"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.drives.size(), 1u);
          EXPECT_EQ(c.drives[0].id, "d0");
          EXPECT_EQ(c.drives[0].path, "/img/d.raw");
          EXPECT_EQ(c.drives[0].format, "raw");
        }}},
      {"bios", {{"-bios", "/fw/bios.bin"}, [](const MachineConfig& c) { EXPECT_EQ(c.bios, "/fw/bios.bin"); }}},
      {"boot", {{"-boot", "order=c,menu=on"}, [](const MachineConfig& c) { EXPECT_TRUE(c.boot_menu); }}},
      {"S", {{"-S"}, [](const MachineConfig& c) { EXPECT_TRUE(c.start_paused); }}},
      {"no-reboot", {{"-no-reboot"}, [](const MachineConfig& c) { EXPECT_TRUE(c.no_reboot); }}},
      {"no-shutdown", {{"-no-shutdown"}, [](const MachineConfig& c) { EXPECT_TRUE(c.no_shutdown); }}},
      {"daemonize", {{"-daemonize"}, [](const MachineConfig& c) { EXPECT_TRUE(c.daemonize); }}},
      {"sandbox", {{"-sandbox", "on"}, [](const MachineConfig& c) { EXPECT_TRUE(c.sandbox); }}},
      {"pidfile", {{"-pidfile", "/run/vm.pid"}, [](const MachineConfig& c) { EXPECT_EQ(c.pidfile, "/run/vm.pid"); }}},
      {"nographic",
       {{"-nographic"},
        [](const MachineConfig& c) {
          ASSERT_EQ(c.serials.size(), 1u);
          EXPECT_EQ(c.findChardev(c.serials[0].chardev_id)->backend, Backend::Stdio);
        }}},
      {"display", {{"-display", "none"}, [](const MachineConfig&) {}}},
      {"vga", {{"-vga", "none"}, [](const MachineConfig&) {}}},
      {"nodefaults", {{"-nodefaults", "-nographic"}, [](const MachineConfig& c) { EXPECT_TRUE(c.serials.empty()); }}},
  };
  return samples;
}

TEST(ParseCommandLine, EveryOptionInUsageIsAcceptedAndTakesEffect) {
  auto names = optionsInUsage();
  ASSERT_FALSE(names.empty());
  for (const auto& name : names) {
    SCOPED_TRACE("-" + name);
    if (name == "cdrom") {  // listed so that users learn it is refused, and why
      EXPECT_NE(parseError({"-cdrom", "x.iso"}).find("not supported yet"), std::string::npos);
      continue;
    }
    auto sample = optionSamples().find(name);
    ASSERT_NE(sample, optionSamples().end()) << "no test sample for -" << name;
    Args args = sample->second.args;
    if (name != "kernel" && name != "bios") args = withKernel(args);
    auto config = parseCommandLine(args);
    ASSERT_TRUE(config.ok()) << config.error().message();
    sample->second.check(*config);
  }
}

TEST(ParseCommandLine, EveryOptionTakingAnArgumentFailsWithoutIt) {
  for (const auto& [name, sample] : optionSamples()) {
    // Samples of the form {"-name", "argument"}; flags and multi-option samples are skipped.
    if (sample.args.size() != 2 || sample.args[0] != "-" + name || sample.args[1][0] == '-') continue;
    SCOPED_TRACE(name);
    EXPECT_EQ(parseError({"-kernel", "k", "-" + name}), "-" + name + ": requires an argument");
  }
}

TEST(ParseCommandLine, QemuMicrovmCommandLine) {
  MachineConfig c = parseOk({"-M", "microvm", "-accel", "kvm", "-cpu", "host,-cx16", "-m", "512", "-smp", "4",
                             "-kernel", "k", "-append", "a b", "-nodefaults", "-serial", "stdio", "-qmp",
                             "unix:/tmp/q.sock,server=on,wait=off", "-S", "-no-reboot"});
  EXPECT_EQ(c.machine_type, "microvm");
  EXPECT_EQ(c.cpu.model, "host");
  ASSERT_EQ(c.cpu.features.size(), 1u);
  EXPECT_EQ(c.cpu.features[0], (std::pair<std::string, bool>{"cx16", false}));
  EXPECT_EQ(c.memory_bytes, 512ull << 20);
  EXPECT_EQ(c.vcpus, 4u);
  EXPECT_EQ(c.kernel, "k");
  EXPECT_EQ(c.append, "a b");
  EXPECT_TRUE(c.start_paused);
  EXPECT_TRUE(c.no_reboot);
  EXPECT_FALSE(c.no_shutdown);

  ASSERT_EQ(c.serials.size(), 1u);
  const ChardevConfig* serial = c.findChardev(c.serials[0].chardev_id);
  ASSERT_NE(serial, nullptr);
  EXPECT_EQ(serial->backend, Backend::Stdio);

  ASSERT_EQ(c.monitors.size(), 1u);
  EXPECT_FALSE(c.monitors[0].pretty);
  const ChardevConfig* qmp = c.findChardev(c.monitors[0].chardev_id);
  ASSERT_NE(qmp, nullptr);
  EXPECT_EQ(qmp->backend, Backend::Socket);
  EXPECT_EQ(qmp->path, "/tmp/q.sock");
  EXPECT_TRUE(qmp->server);
  EXPECT_FALSE(qmp->wait);
  EXPECT_EQ(c.chardevs.size(), 2u);
}

TEST(ParseCommandLine, LibvirtStyleChardevSerialAndMonitor) {
  MachineConfig c = parseOk(withKernel({"-name", "guest=web1,debug-threads=on", "-uuid",
                                        "0ed5f5a2-3e43-4d8b-a1de-7b8b1bd6a0f3", "-machine", "pc-q35-7.2,accel=kvm,usb=off",
                                        "-chardev", "socket,id=charmonitor,path=/run/mon.sock,server=on,wait=off",
                                        "-mon", "chardev=charmonitor,id=monitor,mode=control", "-chardev",
                                        "socket,id=charserial0,path=/run/ser.sock,server=on,wait=off", "-serial",
                                        "chardev:charserial0", "-display", "none", "-no-shutdown"}));
  EXPECT_EQ(c.name, "web1");
  EXPECT_EQ(c.uuid, "0ed5f5a2-3e43-4d8b-a1de-7b8b1bd6a0f3");
  EXPECT_EQ(c.machine_type, "pc-q35-7.2");
  EXPECT_TRUE(c.no_shutdown);
  ASSERT_EQ(c.chardevs.size(), 2u);
  ASSERT_EQ(c.monitors.size(), 1u);
  EXPECT_EQ(c.monitors[0].chardev_id, "charmonitor");
  ASSERT_EQ(c.serials.size(), 1u);
  EXPECT_EQ(c.serials[0].chardev_id, "charserial0");
  const ChardevConfig* serial = c.findChardev("charserial0");
  ASSERT_NE(serial, nullptr);
  EXPECT_EQ(serial->backend, Backend::Socket);
  EXPECT_EQ(serial->path, "/run/ser.sock");
  EXPECT_TRUE(serial->server);
  EXPECT_FALSE(serial->wait);
}

TEST(ParseCommandLine, ChardevMayComeAfterTheSerialThatUsesIt) {
  MachineConfig c = parseOk(withKernel({"-serial", "chardev:late", "-chardev", "stdio,id=late,signal=off"}));
  ASSERT_EQ(c.serials.size(), 1u);
  EXPECT_EQ(c.findChardev("late")->backend, Backend::Stdio);
}

TEST(ParseCommandLine, LegacyServerNowaitFlags) {
  MachineConfig c = parseOk(withKernel({"-chardev", "socket,id=c0,path=/tmp/c0.sock,server,nowait", "-qmp",
                                        "unix:/tmp/q.sock,server,nowait"}));
  const ChardevConfig* c0 = c.findChardev("c0");
  ASSERT_NE(c0, nullptr);
  EXPECT_TRUE(c0->server);
  EXPECT_FALSE(c0->wait);
  ASSERT_EQ(c.monitors.size(), 1u);
  const ChardevConfig* qmp = c.findChardev(c.monitors[0].chardev_id);
  ASSERT_NE(qmp, nullptr);
  EXPECT_EQ(qmp->path, "/tmp/q.sock");
  EXPECT_TRUE(qmp->server);
  EXPECT_FALSE(qmp->wait);
}

// -add-fd in QEMU's syntax: fd and set required, opaque optional; whether the fd is open is
// checked at start (tests/vmm/backends/fd_sets_test.cpp), not while parsing.
TEST(ParseCommandLine, AddFd) {
  MachineConfig c = parseOk(withKernel({"-add-fd", "fd=5,set=2,opaque=/images/disk.qcow2", "-add-fd", "fd=6,set=2"}));
  ASSERT_EQ(c.add_fds.size(), 2u);
  EXPECT_EQ(c.add_fds[0].fd, 5);
  EXPECT_EQ(c.add_fds[0].set, 2u);
  EXPECT_EQ(c.add_fds[0].opaque, "/images/disk.qcow2");
  EXPECT_EQ(c.add_fds[1].fd, 6);
  EXPECT_EQ(c.add_fds[1].opaque, "");
  EXPECT_EQ(parseError(withKernel({"-add-fd", "set=1"})), "-add-fd: fd= is required");
  EXPECT_EQ(parseError(withKernel({"-add-fd", "fd=4"})), "-add-fd: set= is required");
  EXPECT_EQ(parseError(withKernel({"-add-fd", "fd=-1,set=1"})), "-add-fd: fd=-1 is not a file descriptor");
  EXPECT_EQ(parseError(withKernel({"-add-fd", "fd=4,set=x"})), "-add-fd: set=x is not an fd set number");
  EXPECT_THAT(parseError(withKernel({"-add-fd", "fd=4,set=1,mode=rw"})), HasSubstr("mode"));
}

// vmmd binds each worker's QMP socket itself and passes it open, in QEMU's own syntax.
TEST(ParseCommandLine, MonitorOnAnInheritedListeningSocket) {
  MachineConfig c = parseOk(withKernel({"-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control"}));
  const ChardevConfig* qmp = c.findChardev("qmp");
  ASSERT_NE(qmp, nullptr);
  EXPECT_EQ(qmp->backend, Backend::Socket);
  EXPECT_EQ(qmp->fd, 3);
  EXPECT_EQ(qmp->path, "");
  ASSERT_EQ(c.monitors.size(), 1u);
  EXPECT_EQ(c.monitors[0].chardev_id, "qmp");
}

TEST(ParseCommandLine, SocketWaitsForAClientByDefault) {
  MachineConfig c = parseOk(withKernel({"-chardev", "socket,id=c0,path=/tmp/c0.sock,server=on"}));
  EXPECT_TRUE(c.findChardev("c0")->wait);
}

TEST(ParseCommandLine, ChardevBackends) {
  MachineConfig c = parseOk(withKernel({"-chardev", "file,id=f0,path=/tmp/a,,b.log", "-chardev", "null,id=n0",
                                        "-chardev", "stdio,id=s0", "-chardev",
                                        "socket,id=k0,path=/tmp/k.sock,server=on,wait=off,logfile=/tmp/l"}));
  ASSERT_EQ(c.chardevs.size(), 4u);
  EXPECT_EQ(c.findChardev("f0")->backend, Backend::File);
  EXPECT_EQ(c.findChardev("f0")->path, "/tmp/a,b.log");
  EXPECT_EQ(c.findChardev("n0")->backend, Backend::Null);
  EXPECT_EQ(c.findChardev("s0")->backend, Backend::Stdio);
  EXPECT_EQ(c.findChardev("k0")->backend, Backend::Socket);
}

TEST(ParseCommandLine, NographicGivesAStdioSerialUnlessOneIsGiven) {
  MachineConfig plain = parseOk(withKernel({"-nographic"}));
  ASSERT_EQ(plain.serials.size(), 1u);
  EXPECT_EQ(plain.findChardev(plain.serials[0].chardev_id)->backend, Backend::Stdio);

  MachineConfig explicit_serial = parseOk(withKernel({"-nographic", "-serial", "file:/tmp/s.log"}));
  ASSERT_EQ(explicit_serial.serials.size(), 1u);
  EXPECT_EQ(explicit_serial.findChardev(explicit_serial.serials[0].chardev_id)->backend, Backend::File);

  EXPECT_TRUE(parseOk(withKernel({"-nographic", "-serial", "none"})).serials.empty());
  EXPECT_TRUE(parseOk(withKernel({"-nographic", "-nodefaults"})).serials.empty());
}

TEST(ParseCommandLine, SeveralSerialsGetDistinctChardevs) {
  MachineConfig c = parseOk(withKernel({"-serial", "stdio", "-serial", "null", "-serial", "file:/tmp/s2"}));
  ASSERT_EQ(c.serials.size(), 3u);
  std::set<std::string> ids;
  for (const auto& serial : c.serials) ids.insert(serial.chardev_id);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(c.findChardev(c.serials[1].chardev_id)->backend, Backend::Null);
}

TEST(ParseCommandLine, MemorySyntax) {
  EXPECT_EQ(parseOk(withKernel({"-m", "512"})).memory_bytes, 512ull << 20);
  EXPECT_EQ(parseOk(withKernel({"-m", "2G"})).memory_bytes, 2ull << 30);
  EXPECT_EQ(parseOk(withKernel({"-m", "size=4G,slots=2,maxmem=8G"})).memory_bytes, 4ull << 30);
  EXPECT_EQ(parseOk(withKernel({"-m", "2M"})).memory_bytes, 2ull << 20);
}

TEST(ParseCommandLine, MemoryErrors) {
  EXPECT_EQ(parseError(withKernel({"-m", "0"})), "-m: memory size 0 is too small (at least 2M)");
  EXPECT_EQ(parseError(withKernel({"-m", "1M"})), "-m: memory size 1M is too small (at least 2M)");
  EXPECT_EQ(parseError(withKernel({"-m", "4097k"})), "-m: memory size 4097k is not a multiple of 4 KiB");
  EXPECT_THAT(parseError(withKernel({"-m", "lots"})), HasSubstr("-m: 'lots' is not a size"));
  EXPECT_EQ(parseError(withKernel({"-m", "slots=2"})), "-m: missing size");
  EXPECT_EQ(parseError(withKernel({"-m", "1G,bogus=1"})), "-m: invalid parameter 'bogus'");
}

TEST(ParseCommandLine, SmpSyntax) {
  EXPECT_EQ(parseOk(withKernel({"-smp", "4"})).vcpus, 4u);
  EXPECT_EQ(parseOk(withKernel({"-smp", "cpus=2,sockets=1,cores=2,threads=1"})).vcpus, 2u);
  EXPECT_EQ(parseOk(withKernel({"-smp", "sockets=2,cores=3"})).vcpus, 6u);
  EXPECT_EQ(parseOk(withKernel({"-smp", "2,maxcpus=4"})).vcpus, 2u);
  EXPECT_EQ(parseOk(withKernel({"-smp", "254"})).vcpus, 254u);
}

TEST(ParseCommandLine, SmpErrors) {
  EXPECT_EQ(parseError(withKernel({"-smp", "0"})), "-smp: the CPU count must be at least 1");
  EXPECT_EQ(parseError(withKernel({"-smp", "300"})), "-smp: at most 254 CPUs are supported");
  EXPECT_EQ(parseError(withKernel({"-smp", "255"})), "-smp: at most 254 CPUs are supported");
  EXPECT_EQ(parseError(withKernel({"-smp", "four"})), "-smp: 'four' is not a CPU count");
  EXPECT_EQ(parseError(withKernel({"-smp", "4,maxcpus=2"})), "-smp: maxcpus must be at least cpus");
  EXPECT_EQ(parseError(withKernel({"-smp", "cores=0"})), "-smp: cores must be a positive number, not '0'");
  EXPECT_EQ(parseError(withKernel({"-smp", "2,nodes=1"})), "-smp: invalid parameter 'nodes'");
}

TEST(ParseCommandLine, CpuFeatureEditsInOrder) {
  MachineConfig c = parseOk(withKernel({"-cpu", "host,-cx16,+vmx,avx2=off,x2apic=on"}));
  EXPECT_EQ(c.cpu.model, "host");
  // Flags come first, then feature=on|off pairs.
  std::vector<std::pair<std::string, bool>> expected = {{"cx16", false}, {"vmx", true}, {"avx2", false}, {"x2apic", true}};
  EXPECT_EQ(c.cpu.features, expected);
}

TEST(ParseCommandLine, CpuErrors) {
  EXPECT_EQ(parseError(withKernel({"-cpu", "qemu64"})), "-cpu: CPU model 'qemu64' is not supported (host, max)");
  EXPECT_EQ(parseError(withKernel({"-cpu", "host,avx2=maybe"})), "-cpu: avx2=maybe: expected on or off");
  EXPECT_EQ(parseError(withKernel({"-cpu", "host,avx2"})), "-cpu: unexpected item 'avx2'");
  EXPECT_EQ(parseError(withKernel({"-cpu", "host,+"})), "-cpu: unexpected item '+'");
}

TEST(ParseCommandLine, MachineTypes) {
  for (const char* type : {"pc", "q35", "microvm", "pc-q35-8.2", "pc-i440fx-7.2"}) {
    EXPECT_EQ(parseOk(withKernel({"-machine", type})).machine_type, type);
  }
  MachineConfig c = parseOk(withKernel({"-machine", "q35,accel=kvm,smm=off,hpet=off,dump-guest-core=off"}));
  EXPECT_EQ(c.machine_type, "q35");
}

TEST(ParseCommandLine, MachinePropertiesWithoutAType) {
  MachineConfig c = parseOk(withKernel({"-machine", "accel=kvm"}));
  EXPECT_EQ(c.machine_type, "pc") << "the default type stays";
  EXPECT_EQ(parseOk(withKernel({"-machine", "type=microvm,accel=kvm"})).machine_type, "microvm");
}

TEST(ParseCommandLine, AppendIsTakenVerbatim) {
  // -append is not key=value: commas, equals signs and quotes reach the kernel unchanged.
  MachineConfig c = parseOk(withKernel({"-append", "console=ttyS0,115200n8 init=/bin/sh a=\"b c\",,d"}));
  EXPECT_EQ(c.append, "console=ttyS0,115200n8 init=/bin/sh a=\"b c\",,d");
}

TEST(ParseCommandLine, MachineErrors) {
  EXPECT_EQ(parseError(withKernel({"-M", "virt"})), "-M: machine type 'virt' is not supported (pc, q35, microvm)");
  EXPECT_EQ(parseError(withKernel({"-machine", "q35,accel=tcg"})),
            "-machine: accelerator 'tcg' is not supported (kvm)");
  EXPECT_EQ(parseError(withKernel({"-machine", "q35,nvdimm=on"})), "-machine q35: invalid parameter 'nvdimm'");
}

TEST(ParseCommandLine, AccelTcgIsRejected) {
  EXPECT_EQ(parseError(withKernel({"-accel", "tcg"})), "-accel: accelerator 'tcg' is not supported (kvm)");
  EXPECT_EQ(parseError(withKernel({"-accel", "kvm,bogus=1"})), "-accel: invalid parameter 'bogus'");
}

TEST(ParseCommandLine, DeviceKeepsItsProperties) {
  MachineConfig c = parseOk(withKernel({"-device", "virtio-blk-pci,drive=d0,id=disk0,bootindex=1", "-device",
                                        "driver=virtio-net-pci,netdev=n0"}));
  ASSERT_EQ(c.devices.size(), 2u);
  EXPECT_EQ(c.devices[0].driver, "virtio-blk-pci");
  EXPECT_EQ(c.devices[0].properties, (std::map<std::string, std::string>{{"drive", "d0"}, {"id", "disk0"}, {"bootindex", "1"}}));
  EXPECT_EQ(c.devices[1].driver, "virtio-net-pci");
  EXPECT_EQ(c.devices[1].properties.at("netdev"), "n0");
}

TEST(ParseCommandLine, DeviceErrors) {
  EXPECT_EQ(parseError(withKernel({"-device", "virtio-blk-pci,drive=d0,readonly"})),
            "-device: property 'readonly' needs a value");
  EXPECT_EQ(parseError(withKernel({"-device", "id=x"})), "-device: missing driver name");
}

TEST(ParseCommandLine, MonitorOptions) {
  MachineConfig c = parseOk(withKernel({"-chardev", "socket,id=m0,path=/tmp/m,server=on,wait=off", "-mon",
                                        "chardev=m0,mode=control,pretty=on"}));
  ASSERT_EQ(c.monitors.size(), 1u);
  EXPECT_TRUE(c.monitors[0].pretty);
  EXPECT_EQ(parseError(withKernel({"-chardev", "null,id=m0", "-mon", "chardev=m0"})),
            "-mon: mode 'readline' is not supported (control)");
  EXPECT_EQ(parseError(withKernel({"-mon", "mode=control"})), "-mon: needs chardev=ID");
  EXPECT_THAT(parseError(withKernel({"-chardev", "null,id=m0", "-mon", "chardev=m0,mode=control,pretty=2"})),
              HasSubstr("parameter 'pretty' expects 'on' or 'off'"));
}

TEST(ParseCommandLine, DoubleDashOptionsAreAccepted) {
  MachineConfig c = parseOk({"--kernel", "k", "--m", "256", "--no-reboot"});
  EXPECT_EQ(c.kernel, "k");
  EXPECT_EQ(c.memory_bytes, 256ull << 20);
  EXPECT_TRUE(c.no_reboot);
}

TEST(ParseCommandLine, LastKernelAndAppendWin) {
  MachineConfig c = parseOk({"-kernel", "a", "-append", "x", "-kernel", "b", "-append", "y"});
  EXPECT_EQ(c.kernel, "b");
  EXPECT_EQ(c.append, "y");
}

// Errors, each with the message the user sees.

TEST(ParseCommandLineErrors, UnknownOption) {
  EXPECT_EQ(parseError(withKernel({"-hda", "disk.img"})), "-hda: invalid option");
  EXPECT_EQ(parseError(withKernel({"--bogus"})), "-bogus: invalid option");
}

TEST(ParseCommandLineErrors, PositionalArgument) {
  EXPECT_EQ(parseError(withKernel({"-"})), "'-': expected an option");
}

TEST(ParseCommandLineErrors, MissingArgument) {
  EXPECT_EQ(parseError({"-kernel", "k", "-m"}), "-m: requires an argument");
  EXPECT_EQ(parseError({"-kernel"}), "-kernel: requires an argument");
}

TEST(ParseCommandLineErrors, BadUuid) {
  EXPECT_EQ(parseError(withKernel({"-uuid", "not-a-uuid"})), "-uuid: 'not-a-uuid' is not a UUID");
  // Right length, dash in the wrong place.
  EXPECT_EQ(parseError(withKernel({"-uuid", "0ed5f5a23-e43-4d8b-a1de-7b8b1bd6a0f3"})),
            "-uuid: '0ed5f5a23-e43-4d8b-a1de-7b8b1bd6a0f3' is not a UUID");
  // Right shape, a non-hex digit.
  EXPECT_EQ(parseError(withKernel({"-uuid", "0ed5f5a2-3e43-4d8b-a1de-7b8b1bd6a0fg"})),
            "-uuid: '0ed5f5a2-3e43-4d8b-a1de-7b8b1bd6a0fg' is not a UUID");
}

TEST(ParseCommandLineErrors, UnknownChardevReference) {
  EXPECT_EQ(parseError(withKernel({"-serial", "chardev:nope"})), "-serial: chardev 'nope' not found");
  EXPECT_EQ(parseError(withKernel({"-mon", "chardev=nope,mode=control"})), "-mon: chardev 'nope' not found");
  EXPECT_EQ(parseError(withKernel({"-serial", "chardev:"})), "-serial: chardev: needs an id");
}

TEST(ParseCommandLineErrors, DuplicateChardevId) {
  EXPECT_EQ(parseError(withKernel({"-chardev", "null,id=c0", "-chardev", "stdio,id=c0"})),
            "-chardev: duplicate chardev id 'c0'");
}

TEST(ParseCommandLineErrors, ChardevProblems) {
  EXPECT_EQ(parseError(withKernel({"-chardev", "socket,path=/tmp/s,server=on"})), "-chardev: chardev needs id=");
  EXPECT_EQ(parseError(withKernel({"-chardev", "socket,id=c0,server=on"})), "-chardev: socket chardev needs path= or fd=");
  EXPECT_EQ(parseError(withKernel({"-chardev", "socket,id=c0,path=/tmp/s,fd=3,server=on"})),
            "-chardev: socket chardev takes path= or fd=, not both");
  EXPECT_EQ(parseError(withKernel({"-chardev", "socket,id=c0,fd=three,server=on"})),
            "-chardev: fd=three is not a file descriptor");
  EXPECT_EQ(parseError(withKernel({"-chardev", "socket,id=c0,fd=3,server=on", "-chardev", "socket,id=c1,fd=3,server=on"})),
            "-chardev: fd=3 is chardev 'c0' already");
  EXPECT_EQ(parseError(withKernel({"-chardev", "socket,id=c0,path=/tmp/s"})),
            "-chardev: only server=on sockets are supported");
  EXPECT_EQ(parseError(withKernel({"-chardev", "socket,id=c0,path=/tmp/s,server=on,telnet"})),
            "-chardev: unexpected item 'telnet'");
  EXPECT_EQ(parseError(withKernel({"-chardev", "pty,id=p0"})),
            "-chardev: backend 'pty' is not supported (socket, stdio, file, null)");
  EXPECT_EQ(parseError(withKernel({"-chardev", "file,id=f0"})), "-chardev: file chardev needs path=");
  EXPECT_EQ(parseError(withKernel({"-chardev", "null,id=n0,mux=on"})), "-chardev: invalid parameter 'mux'");
}

TEST(ParseCommandLineErrors, SerialProblems) {
  EXPECT_EQ(parseError(withKernel({"-serial", "pty"})),
            "-serial: 'pty' is not a supported backend (stdio, null, unix:PATH, file:PATH, chardev:ID)");
  EXPECT_EQ(parseError(withKernel({"-serial", "file:"})), "-serial: file: needs a path");
  EXPECT_EQ(parseError(withKernel({"-serial", "unix:/tmp/s"})), "-serial: only server=on sockets are supported");
  EXPECT_EQ(parseError(withKernel({"-qmp", "tcp:localhost:4444,server=on"})),
            "-qmp: 'tcp:localhost:4444,server=on' is not a supported backend (stdio, null, unix:PATH, file:PATH, "
            "chardev:ID)");
}

TEST(ParseCommandLineErrors, DisplayAndVga) {
  EXPECT_EQ(parseError(withKernel({"-display", "gtk"})), "-display: display 'gtk' is not supported (none)");
  EXPECT_EQ(parseError(withKernel({"-vga", "std"})), "-vga: vga 'std' is not supported (none)");
}

TEST(ParseCommandLineErrors, KernelOptionsNeedAKernel) {
  EXPECT_EQ(parseError({"-initrd", "initrd.img"}), "-initrd needs -kernel");
  EXPECT_EQ(parseError({"-append", "console=ttyS0"}), "-append needs -kernel");
  EXPECT_EQ(parseError({"-kernel", "k", "-bios", "b.bin"}),
            "-bios and -kernel: vmm boots a -kernel directly, without firmware; give one of them");
}

TEST(ParseCommandLine, WithoutKernelTheMachineBootsThroughFirmware) {
  auto config = parseCommandLine({"-m", "512"});
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_TRUE(config->kernel.empty());
  EXPECT_TRUE(config->bios.empty());  // Debian's SeaBIOS
  auto bios = parseCommandLine({"-bios", "/x/bios.bin", "-boot", "order=c,menu=on"});
  ASSERT_TRUE(bios) << bios.error().message();
  EXPECT_EQ(bios->bios, "/x/bios.bin");
  EXPECT_TRUE(bios->boot_menu);
  EXPECT_TRUE(parseCommandLine({"-boot", "c"}));
  EXPECT_EQ(bios->boot_retry_ms, -1);
  auto retry = parseCommandLine({"-boot", "reboot-timeout=3000"});
  ASSERT_TRUE(retry) << retry.error().message();
  EXPECT_EQ(retry->boot_retry_ms, 3000);
}

TEST(ParseCommandLine, APositionalImageIsAVirtioDisk) {
  auto config = parseCommandLine({"-m", "512", "disk,1.qcow2"});
  ASSERT_TRUE(config) << config.error().message();
  ASSERT_EQ(config->drives.size(), 1u);
  EXPECT_EQ(config->drives[0].path, "disk,1.qcow2");
  EXPECT_EQ(config->drives[0].format, "");  // probed
  ASSERT_EQ(config->devices.size(), 1u);
  EXPECT_EQ(config->devices[0].driver, "virtio-blk-pci");
}

TEST(ParseCommandLineErrors, FirmwareBootOptions) {
  EXPECT_EQ(parseError({"-cdrom", "x.iso"}),
            "-cdrom: CD-ROM drives are not supported yet (vmm has virtio-blk disks only: -drive file=...,if=virtio)");
  EXPECT_EQ(parseError({"-boot", "order=dc"}), "-boot: order=dc: only c (the first hard disk) is supported");
  EXPECT_EQ(parseError({"-boot", "n"}), "-boot: order=n: only c (the first hard disk) is supported");
  EXPECT_EQ(parseError({"-boot", "strict=on"}), "-boot: strict=on is not supported");
  EXPECT_EQ(parseError({"-boot", "reboot-timeout=soon"}), "-boot: reboot-timeout=soon is not a time in ms (or -1)");
  EXPECT_NE(parseError({"-boot", "menu=maybe"}).find("menu"), std::string::npos);
}

}  // namespace
}  // namespace vmmd::config
