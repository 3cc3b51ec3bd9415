// Where `vmctl migrate NAME --to DEST` sends a VM: the one place that reads DEST, for vmctl (usage
// errors before anything is sent) and for vmmd (which acts on it).
//
//   /run/vmmd/vmmd.sock            the control socket of a vmmd on this host (any path with a '/')
//   HOST                           ssh://root@HOST (a bare word with no '/' that is not an existing
//                                  file: "vmmd.sock" in the current directory stays a path)
//   ssh://[USER@]HOST[:PORT][/][?PARAM=VALUE&...]
//       the vmmd on HOST, reached through OpenSSH's ssh as USER (default root), control and data
//       each over an ssh session running `vmctl --socket PATH stdio-bridge` there. Parameters (as
//       libvirt's qemu+ssh URIs name them; values may be %-escaped):
//         socket=PATH       the destination vmmd's control socket (default: vmctl's default there)
//         keyfile=PATH      ssh -i PATH
//         known_hosts=PATH  ssh -o UserKnownHostsFile=PATH
//         no_verify=1       ssh -o StrictHostKeyChecking=no (and, without known_hosts, no file
//                           is read or written: UserKnownHostsFile=/dev/null)
//         vmctl=PATH        the vmctl to run there (default: the path of the vmctl installed next
//                           to this vmmd, which the same package puts at the same place there)
//       HOST is a name, an IPv4 address or a bracketed IPv6 address; neither HOST nor USER may
//       start with '-', and paths must be absolute: nothing here can become an ssh option.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>

#include "base/result.h"

namespace vmmd {

struct LocalDestination {
  std::string socket;  // absolute
};

struct SshDestination {
  std::string user = "root";
  std::string host;  // without the brackets of an IPv6 address
  uint16_t port = 0;  // 0: ssh's default (its config, else 22)
  std::string socket;  // the destination's control socket; empty: vmctl's default there
  std::string keyfile;
  std::string known_hosts;
  bool no_verify = false;
  std::string vmctl;  // empty: the caller's default

  // "ssh://root@10.0.0.2:2222?socket=/run/vmmd/vmmd.sock": who and where, for messages (the key
  // and known-hosts files are left out).
  std::string display() const;
};

using MigrationDestination = std::variant<LocalDestination, SshDestination>;

// Whether a bare word names an existing file (a socket in the current directory); the default
// asks the file system.
using PathExists = std::function<bool(const std::string& path)>;

// DEST as above, or an Error naming what is wrong with it. A relative path (with a '/', or an
// existing bare name) becomes absolute against the current directory.
Result<MigrationDestination> parseMigrationDestination(std::string_view text, const PathExists& exists = {});

// The text to show for a parsed destination: the socket, or SshDestination::display().
std::string describeDestination(const MigrationDestination& destination);

}  // namespace vmmd
