#include "daemon/launch/worker_argv.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "daemon/definition/definition_json.h"

namespace vmmd::daemon {
namespace {

using Args = std::vector<std::string>;

TEST(WorkerPaths, LiveUnderTheRunDir) {
  auto paths = workerPathsFor("/run/vmmd/", "web1");
  ASSERT_TRUE(paths.ok()) << paths.error().message();
  EXPECT_EQ(paths->dir, "/run/vmmd/vms/web1");
  EXPECT_EQ(paths->qmp_socket, "/run/vmmd/vms/web1/qmp.sock");
  EXPECT_EQ(paths->console_socket, "/run/vmmd/vms/web1/console.sock");
  EXPECT_EQ(paths->qga_socket, "/run/vmmd/vms/web1/qga.sock");
  EXPECT_EQ(paths->pidfile, "/run/vmmd/vms/web1/pid");
}

TEST(WorkerPaths, RefusesWhatASocketCannotHold) {
  EXPECT_EQ(workerPathsFor("run", "a").error().message(), "run dir 'run': must be absolute");
  EXPECT_EQ(workerPathsFor("/run", "../x").error().message(), "vm name '../x': must not start with '.' or '-'");
  std::string root = "/" + std::string(40, 'r');
  auto paths = workerPathsFor(root, std::string(64, 'n'));  // 41 + 5 + 64 + 13 = 123 bytes for console.sock
  ASSERT_FALSE(paths.ok());
  EXPECT_NE(paths.error().message().find("more than the 107 a Unix socket allows"), std::string::npos)
      << paths.error().message();
  EXPECT_TRUE(workerPathsFor(root, std::string(40, 'n')).ok());
}

TEST(WorkerArgv, MinimalDefinition) {
  auto def = parseDefinition(R"({"schema": 1, "name": "web1", "uuid": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
                                  "memory": 512, "vcpus": 2, "kernel": "/boot/vmlinuz"})");
  ASSERT_TRUE(def.ok()) << def.error().message();
  auto paths = workerPathsFor("/run/vmmd", "web1");
  ASSERT_TRUE(paths.ok());
  EXPECT_EQ(workerArgv(*def, *paths),
            (Args{"-name", "guest=web1", "-uuid", "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "-m", "512", "-smp", "2",
                  "-cpu", "host", "-machine", "q35,accel=kvm", "-nodefaults", "-display", "none", "-kernel",
                  "/boot/vmlinuz", "-chardev", "socket,id=console,path=/run/vmmd/vms/web1/console.sock,server=on,wait=off",
                  "-serial", "chardev:console", "-chardev", "socket,id=qmp,fd=3,server=on,wait=off",
                  "-mon", "chardev=qmp,mode=control",
                  "-pidfile", "/run/vmmd/vms/web1/pid", "-sandbox", "on"}));
}

TEST(WorkerArgv, EveryDevice) {
  auto def = parseDefinition(R"({"schema": 1, "name": "db", "uuid": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
      "memory": 64, "kernel": "/k", "initrd": "/i", "cmdline": "console=ttyS0 quiet", "serial": false, "agent": true,
      "disks": [{"path": "/img/a,b.qcow2", "format": "qcow2", "cache": "none"},
                {"id": "seed", "path": "/img/seed.raw", "format": "raw", "readonly": true}],
      "nics": [{"ifname": "tap0", "mac": "52:54:00:00:00:01"}, {"ifname": "tap1", "mac": "52:54:00:00:00:02"}]})");
  ASSERT_TRUE(def.ok()) << def.error().message();
  auto paths = workerPathsFor("/r,un", "db");
  ASSERT_TRUE(paths.ok());
  EXPECT_EQ(workerArgv(*def, *paths),
            (Args{"-name", "guest=db", "-uuid", "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "-m", "64", "-smp", "1",
                  "-cpu", "host", "-machine", "q35,accel=kvm", "-nodefaults", "-display", "none",
                  "-kernel", "/k", "-initrd", "/i", "-append", "console=ttyS0 quiet",
                  // No -serial: serial is off. Commas in paths are doubled inside option values only.
                  // QMP on the listening socket vmmd passes as fd 3 (it bound paths.qmp_socket).
                  "-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control",
                  "-pidfile", "/r,un/vms/db/pid", "-sandbox", "on",
                  "-drive", "file=/img/a,,b.qcow2,format=qcow2,if=virtio,readonly=off,cache=none,id=disk0",
                  "-drive", "file=/img/seed.raw,format=raw,if=virtio,readonly=on,cache=writeback,id=seed",
                  "-netdev", "tap,id=net0,ifname=tap0,script=no,downscript=no",
                  "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01",
                  "-netdev", "tap,id=net1,ifname=tap1,script=no,downscript=no",
                  "-device", "virtio-net-pci,netdev=net1,mac=52:54:00:00:00:02",
                  "-device", "virtio-serial-pci",
                  "-chardev", "socket,id=qga0,path=/r,,un/vms/db/qga.sock,server=on,wait=off",
                  "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0,id=agent0"}));
}

TEST(WorkerArgv, EscapeDoublesCommas) {
  EXPECT_EQ(escapeOptionValue(""), "");
  EXPECT_EQ(escapeOptionValue("/plain"), "/plain");
  EXPECT_EQ(escapeOptionValue(",a,,b,"), ",,a,,,,b,,");
}

}  // namespace
}  // namespace vmmd::daemon
