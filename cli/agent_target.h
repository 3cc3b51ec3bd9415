// Where `vmctl agent`, `exec` and `cp` send guest-agent commands: through vmmd to a VM's agent
// (vm-agent-command; vmmd resynchronises before each), or with --socket PATH straight to an
// agent socket (any qemu-ga: a VM's qga.sock, or `qemu-ga -m unix-listen -p PATH` on a host).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/cli.h"
#include "qmp/agent_client.h"

namespace vmmd::cli {

using Seconds = std::chrono::duration<double>;

// The options the agent commands share, and what is left.
struct AgentArgs {
  std::optional<std::string> socket;  // --socket PATH: straight to an agent
  std::optional<double> timeout_s;    // --timeout S
  std::vector<std::string> rest;      // positional arguments; after "--" everything verbatim
  bool dash_dash = false;             // rest holds a "--" separated tail (exec)
  size_t dash_dash_at = 0;            // index in rest where the tail starts
};
// Parses [--socket PATH] [--timeout S] anywhere before "--"; an error message, or the arguments.
Result<AgentArgs> parseAgentArgs(const std::vector<std::string>& args);

class AgentTarget {
 public:
  // Connects to vmmd (for VM `name`) or to the agent socket; prints why not and sets `exit_code`.
  static std::optional<AgentTarget> open(const Globals& globals, const AgentArgs& args, const std::string& name,
                                         int& exit_code);

  // The reply's "return" value. On failure the Error says why, and lastExitCode() is
  // kAgentUnavailable (no agent answering), kVmmdError (the agent or vmmd refused) or kUnreachable.
  Result<qmp::Json> execute(std::string_view command, const qmp::JsonValue* args, Seconds timeout);
  // A whole request object ({"execute": ..., "arguments": ...}).
  Result<qmp::Json> request(const qmp::JsonValue& request, Seconds timeout);
  int lastExitCode() const { return last_exit_code_; }

 private:
  std::string vm_;
  std::optional<qmp::SyncClient> vmmd_;
  std::optional<qmp::AgentClient> agent_;
  int last_exit_code_ = kOk;
};

}  // namespace vmmd::cli
