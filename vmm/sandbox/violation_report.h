// The SIGSYS handler behind every filter's trap: one line on stderr (the worker's log),
//   vmm: seccomp: vCPU thread made a forbidden system call 59 (execve)
// then death by SIGSYS. Only async-signal-safe work happens in the handler: the names were
// resolved (libseccomp allocates) when the filters were built, the role is a thread-local enum.
#pragma once

#include <string>

#include "base/result.h"
#include "vmm/sandbox/syscall_allowlist.h"

namespace vmmd::sandbox {

// Resolves the syscall names and the line's prefix, and installs the SIGSYS handler.
Status installViolationReporter();

// What the calling thread is, for its report (threads that never narrowed report "worker").
void setThreadRole(Role role);

// The line the handler writes for `syscall` on a thread of `role` (tests compare with it).
std::string violationLine(const char* role, int syscall);

}  // namespace vmmd::sandbox
