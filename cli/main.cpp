// vmctl: the command-line client of vmmd. `vmctl --help` lists the commands and exit codes.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "cli/cli.h"

using namespace vmmd::cli;

namespace vmmd::cli {

std::string usageText() {
  return R"(usage: vmctl [--socket PATH] [--json] COMMAND [ARGS]

VM definitions
  define FILE                       define a VM from its JSON definition or a libvirt domain
                                    XML (told apart by the first non-blank byte; "-" reads stdin)
  dumpxml NAME                      print the VM as a libvirt domain XML
  undefine NAME                     remove a VM's definition (it must not be running)
Life cycle
  start NAME                        start the VM; returns once the guest runs
  shutdown NAME [--timeout S] [--force] [--mode acpi|agent]
                                    ACPI power button (or guest-shutdown through the guest
                                    agent); waits up to S seconds (default 60) for power-off,
                                    then destroys the VM if --force
  destroy NAME                      kill the VM's worker at once
  reboot NAME                       hard reset of the guest
  pause NAME | resume NAME          stop / continue the vCPUs
Snapshots (qcow2 disks: internal snapshots; memory and devices: a state file beside vmmd's store)
  snapshot save NAME TAG            pause, snapshot every disk and the guest state, resume
  snapshot list NAME                tag, date, state size and disks of each snapshot
  snapshot revert NAME TAG          disks back to TAG, the guest resumed from its saved state
  snapshot delete NAME TAG          remove the disk snapshots and the state file
Migration (storage both hosts reach; root only)
  migrate NAME --to DEST            move the running VM to another vmmd; on failure it keeps
                                    running here. DEST: its control socket (a path), or HOST
                                    (= ssh://root@HOST), or ssh://[USER@]HOST[:PORT][?PARAMS]:
                                    through OpenSSH, PARAMS socket=PATH (its control socket
                                    there), keyfile=PATH, known_hosts=PATH, no_verify=1,
                                    vmctl=PATH (the vmctl there), joined by '&'
  migrate-cancel NAME               cancel it; migrate-status NAME: its progress
  stdio-bridge                      copy stdin to the --socket and it to stdout until either
                                    closes (what a migration's source runs here through ssh)
Inspection
  list                              name, state, vCPUs, memory, uptime, IPv4 addresses of every VM
  info NAME                         everything vmmd knows about one VM (each NIC: MAC, network
                                    or tap, IPv4 address and its source: agent or dhcp-lease)
  events                            print VM state changes as they happen (Ctrl-C ends)
Access
  console NAME                      attach to the serial console; Ctrl-] detaches
  qmp NAME JSON                     pass one QMP command to the VM's worker, e.g.
                                    vmctl qmp web1 '{"execute": "query-status"}'
Guest agent (qemu-ga in the guest; the VM's definition has "agent": true)
  agent NAME JSON                   pass one command to the guest agent, print its return value:
                                    vmctl agent web1 '{"execute": "guest-get-osinfo"}'
  exec NAME [--timeout S] -- CMD [ARGS...]
                                    run CMD in the guest; its stdout/stderr become ours and its
                                    exit status vmctl's
  cp LOCAL NAME:/path | cp NAME:/path LOCAL
                                    copy a file into / out of the guest, checked by size and,
                                    when the guest has sha256sum, by SHA-256
  agent, exec and cp take --socket PATH instead of NAME to talk straight to an agent socket
  (any qemu-ga; cp then writes the guest side ":/path"), and --timeout S per agent request
  (default 10 s for agent, 30 s for cp; exec: for the whole command, default none).

Networks (root only; see the README's "Networks")
  net-define FILE                   define a network from its JSON definition ("-": stdin)
  net-undefine NAME                 remove a network's definition (it must not be active)
  net-start NAME | net-stop NAME    bring a network up (bridge, address, NAT, dnsmasq) / down;
                                    net-start default defines libvirt's default network first
  net-list                          name, state, mode, bridge, subnet, autostart of every network
  net-info NAME                     a network's state, dnsmasq and leases
  net-autostart NAME [--disable]    start the network when vmmd starts (or no longer)

Options
  --socket PATH   vmmd's control socket (default $VMMD_SOCKET, else /run/vmmd/vmmd.sock)
  --json          machine-readable output (list, info, events, qmp, dumpxml, net-list, net-info, snapshot, migrate)

Exit codes
  0 success   1 vmmd (or the guest agent) reported an error   2 usage error
  3 cannot reach vmmd   4 local error   5 no guest agent answering (agent, exec, cp)
  exec: the guest command's exit status; 128+N when signal N ended it; 124 when --timeout
  passed (the command keeps running); 125 when vmctl could not run it
)";
}

}  // namespace vmmd::cli

int main(int argc, char** argv) {
  Invocation inv;
  const char* env = std::getenv("VMMD_SOCKET");
  inv.globals.socket = env && *env ? env : "/run/vmmd/vmmd.sock";
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "help") {
      std::fputs(usageText().c_str(), stdout);
      return kOk;
    }
    if (arg == "--json") {
      inv.globals.json = true;
    } else if (arg == "--socket") {
      if (i + 1 >= argc) return failWith(kUsage, "--socket needs a path");
      inv.globals.socket = argv[++i];
    } else if (arg.rfind("--socket=", 0) == 0) {
      inv.globals.socket = arg.substr(9);
    } else if (arg.rfind("-", 0) == 0) {
      return failWith(kUsage, "unknown option '" + arg + "' (see vmctl --help)");
    } else {
      break;
    }
  }
  if (i >= argc) return failWith(kUsage, "no command given (see vmctl --help)");
  inv.command = argv[i++];
  // agent, exec and cp have a --socket of their own (an agent socket), and what follows "--" is
  // a guest command line: neither is a global option.
  static const std::set<std::string> agent = {"agent", "exec", "cp"};
  bool own_socket = agent.count(inv.command) > 0;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      for (; i < argc; ++i) inv.args.push_back(argv[i]);
      break;
    }
    // Global options are accepted after the command too: `vmctl list --json`.
    if (arg == "--json") inv.globals.json = true;
    else if (arg == "--socket" && i + 1 < argc && !own_socket) inv.globals.socket = argv[++i];
    else inv.args.push_back(arg);
  }

  static const std::set<std::string> vm = {"define", "undefine", "dumpxml", "start", "shutdown", "destroy", "reboot", "pause", "resume"};
  static const std::set<std::string> read = {"list", "info", "events"};
  if (vm.count(inv.command)) return runVmCommand(inv);
  if (read.count(inv.command)) return runReadCommand(inv);
  if (inv.command == "console") return runConsoleCommand(inv);
  if (inv.command == "qmp") return runQmpCommand(inv);
  if (inv.command == "agent") return runAgentCommand(inv);
  if (inv.command == "exec") return runExecCommand(inv);
  if (inv.command == "cp") return runCopyCommand(inv);
  if (inv.command.rfind("net-", 0) == 0) return runNetCommand(inv);
  if (inv.command == "snapshot" || inv.command == "migrate" || inv.command == "migrate-cancel" || inv.command == "migrate-status") {
    return runMobilityCommand(inv);
  }
  if (inv.command == "stdio-bridge") return runStdioBridge(inv);
  return failWith(kUsage, "unknown command '" + inv.command + "' (see vmctl --help)");
}
