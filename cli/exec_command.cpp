// exec NAME [--timeout S] -- CMD ARGS...: runs a program in the guest through the agent, copies
// its output to our stdout and stderr, and exits with its status (128+N when signal N ended it;
// 124 when --timeout passed first, 125 when vmctl could not run it).
#include <cerrno>
#include <cstdio>

#include "cli/guest_exec.h"

namespace vmmd::cli {

int runExecCommand(const Invocation& inv) {
  const char* usage = "usage: vmctl exec NAME [--timeout S] -- CMD [ARGS...]  (or --socket PATH instead of NAME)";
  auto args = parseAgentArgs(inv.args);
  if (!args) return failWith(kExecFailed, "exec: " + args.error().message());
  // NAME (unless --socket), then the command: after "--", or from the first other word on.
  size_t names = args->socket ? 0 : 1;
  size_t cmd_at = args->dash_dash ? args->dash_dash_at : names;
  if (args->rest.size() <= cmd_at || cmd_at != names) return failWith(kExecFailed, usage);

  int exit_code = kOk;
  auto target = AgentTarget::open(inv.globals, *args, names ? args->rest[0] : "", exit_code);
  if (!target) return kExecFailed;
  std::vector<std::string> argv(args->rest.begin() + static_cast<std::ptrdiff_t>(cmd_at), args->rest.end());
  auto result = runInGuest(*target, argv, Seconds(args->timeout_s.value_or(1e9)));
  if (!result) {
    int code = result.error().code() == ETIMEDOUT ? kExecTimedOut : kExecFailed;
    return failWith(code, "exec: " + result.error().message());
  }
  std::fwrite(result->out.data(), 1, result->out.size(), stdout);
  std::fflush(stdout);
  std::fwrite(result->err.data(), 1, result->err.size(), stderr);
  if (result->truncated) std::fprintf(stderr, "vmctl: exec: the agent truncated the command's output\n");
  if (result->signal) return 128 + *result->signal;
  return *result->exit_code & 0xFF;
}

}  // namespace vmmd::cli
