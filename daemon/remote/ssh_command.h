// The OpenSSH command line that carries one connection to a Unix socket on a migration's
// destination host: `ssh ... -- HOST 'VMCTL' --socket 'PATH' stdio-bridge`, whose stdin and
// stdout are then that socket's two directions (the bridge copies them there, as libvirt's
// virt-ssh-helper does). The remote command is one line of shell with every word single-quoted.
#pragma once

#include <string>
#include <vector>

#include "base/migration_destination.h"

namespace vmmd::daemon {

// `remote_socket`: the socket to bridge to there (empty: vmctl's default control socket);
// `vmctl`: the vmctl to run there when the destination names none.
std::vector<std::string> sshBridgeArgv(const SshDestination& destination, const std::string& remote_socket,
                                       const std::string& vmctl);

// `word` as one single-quoted shell word ('it'\''s').
std::string shellQuote(const std::string& word);

}  // namespace vmmd::daemon
