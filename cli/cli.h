// vmctl's shared pieces: parsed global options, exit codes, the connection to vmmd and output
// helpers. Each command group lives in its own file (vm_commands.cpp, read_commands.cpp,
// console_command.cpp, qmp_command.cpp) and is dispatched from main.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "qmp/json.h"
#include "qmp/sync_client.h"

namespace vmmd::cli {

// Documented in `vmctl --help` and the README; scripts rely on them.
enum ExitCode : int {
  kOk = 0,
  kVmmdError = 1,     // vmmd answered with an error (unknown VM, bad definition, not running...)
  kUsage = 2,         // bad command line
  kUnreachable = 3,   // cannot connect to vmmd (not running, wrong --socket, no permission)
  kLocalError = 4,    // a local failure: unreadable file, console socket, terminal
  kAgentUnavailable = 5,  // agent/exec/cp: no guest agent answering (not running, channel busy)
  // exec only: the guest command's own status is the exit code, so vmctl's failures use these.
  kExecTimedOut = 124,  // --timeout passed; the guest command keeps running
  kExecFailed = 125,    // vmctl could not run the command (message says why)
};

struct Globals {
  std::string socket;  // --socket, else $VMMD_SOCKET, else /run/vmmd/vmmd.sock
  bool json = false;   // --json: machine-readable output of read commands
};

struct Invocation {
  Globals globals;
  std::string command;
  std::vector<std::string> args;  // after the command, options included
};

// Prints "vmctl: MESSAGE" on stderr and returns `code`.
int failWith(int code, const std::string& message);

// Connected, negotiated client, or the exit code after printing why not.
struct Connection {
  std::optional<qmp::SyncClient> client;
  int exit_code = kOk;
};
Connection connectToVmmd(const Globals& globals);

// Runs one vmmd command; on error prints vmmd's description and returns nullopt.
std::optional<qmp::Json> call(qmp::SyncClient& client, const std::string& command, const qmp::JsonValue* args = nullptr);
// Like call() for commands that only need {"name": NAME}.
std::optional<qmp::Json> callOnVm(qmp::SyncClient& client, const std::string& command, const std::string& name);

void printJson(const qmp::JsonValue& value);

// The whole of FILE, or of stdin for "-" (define, net-define).
Result<std::string> readDefinitionFile(const std::string& path);

// Command groups: each returns the process exit code.
int runVmCommand(const Invocation& inv);      // define undefine dumpxml start shutdown destroy reboot pause resume
int runReadCommand(const Invocation& inv);    // list info events
int runConsoleCommand(const Invocation& inv); // console
int runQmpCommand(const Invocation& inv);     // qmp
int runAgentCommand(const Invocation& inv);   // agent
int runExecCommand(const Invocation& inv);    // exec
int runCopyCommand(const Invocation& inv);    // cp
int runNetCommand(const Invocation& inv);     // net-define net-undefine net-start net-stop net-list net-info net-autostart
int runMobilityCommand(const Invocation& inv);  // snapshot migrate migrate-cancel migrate-status
int runStdioBridge(const Invocation& inv);      // stdio-bridge

std::string usageText();

}  // namespace vmmd::cli
