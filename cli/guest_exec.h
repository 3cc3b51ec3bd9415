// Runs one program in the guest through the agent and waits for it: guest-exec with
// capture-output, then guest-exec-status until it has exited. Shared by `vmctl exec` and
// `vmctl cp` (which checks copies with the guest's sha256sum).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/agent_target.h"

namespace vmmd::cli {

struct GuestExecResult {
  int64_t pid = 0;
  std::optional<int> exit_code;  // when it exited
  std::optional<int> signal;     // when a signal ended it
  std::string out, err;          // decoded captured output
  bool truncated = false;        // the agent kept only the first part of the output
};

// `argv[0]` is looked up on the guest's PATH. Gives up waiting after `timeout` with an Error whose
// code is ETIMEDOUT (the program keeps running); other failures leave target.lastExitCode() set.
Result<GuestExecResult> runInGuest(AgentTarget& target, const std::vector<std::string>& argv, Seconds timeout);

}  // namespace vmmd::cli
