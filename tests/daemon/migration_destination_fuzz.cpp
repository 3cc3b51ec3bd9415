// libFuzzer target: any `--to` text gets a destination or an error, never a crash; what it accepts
// as ssh never yields an ssh option in the host's or user's place, and its display form reads back
// as the same host, user, port and socket.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "base/migration_destination.h"
#include "daemon/remote/ssh_command.h"

namespace {

void fail(const char* what, const std::string& text) {
  std::fprintf(stderr, "%s: %s\n", what, text.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmmd;
  using vmmd::daemon::sshBridgeArgv;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parseMigrationDestination(text, [](const std::string&) { return false; });
  if (!parsed || !std::holds_alternative<SshDestination>(*parsed)) return 0;
  const auto& d = std::get<SshDestination>(*parsed);
  if (d.host.empty() || d.host[0] == '-' || d.user.empty() || d.user[0] == '-') fail("an option as host or user", d.display());
  auto argv = sshBridgeArgv(d, "", "vmctl");
  if (argv.size() < 4 || argv[argv.size() - 3] != "--" || argv[argv.size() - 2] != d.host) fail("host not after --", d.display());
  auto again = parseMigrationDestination(d.display(), [](const std::string&) { return false; });
  if (!again || !std::holds_alternative<SshDestination>(*again)) fail("display form refused", d.display());
  const auto& e = std::get<SshDestination>(*again);
  if (e.host != d.host || e.user != d.user || e.port != d.port || e.socket != d.socket) fail("display form differs", d.display());
  return 0;
}
