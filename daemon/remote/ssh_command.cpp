#include "daemon/remote/ssh_command.h"

namespace vmmd::daemon {

std::string shellQuote(const std::string& word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::vector<std::string> sshBridgeArgv(const SshDestination& d, const std::string& remote_socket, const std::string& vmctl) {
  std::vector<std::string> argv = {
      "ssh",
      "-T",  // no terminal: the session carries bytes, not a login
      "-x", "-a",  // no X11 or agent forwarding
      "-o", "BatchMode=yes",  // never a password or passphrase prompt: vmmd has no one to ask
      "-o", "ConnectTimeout=15",
      // A link that stops carrying anything ends the session (and so the migration) in ~15 s.
      // (ssh says so at its default LogLevel, INFO: "Timeout, server not responding.")
      "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
  };
  if (d.port) argv.insert(argv.end(), {"-p", std::to_string(d.port)});
  if (!d.keyfile.empty()) argv.insert(argv.end(), {"-i", d.keyfile, "-o", "IdentitiesOnly=yes"});
  if (!d.known_hosts.empty()) argv.insert(argv.end(), {"-o", "UserKnownHostsFile=" + d.known_hosts});
  if (d.no_verify) {
    argv.insert(argv.end(), {"-o", "StrictHostKeyChecking=no"});
    if (d.known_hosts.empty()) argv.insert(argv.end(), {"-o", "UserKnownHostsFile=/dev/null"});
  }
  argv.insert(argv.end(), {"-l", d.user, "--", d.host});
  std::string command = shellQuote(d.vmctl.empty() ? vmctl : d.vmctl);
  std::string socket = remote_socket.empty() ? d.socket : remote_socket;
  if (!socket.empty()) command += " --socket " + shellQuote(socket);
  argv.push_back(command + " stdio-bridge");
  return argv;
}

}  // namespace vmmd::daemon
