// What each of the worker's thread roles may ask of the kernel, as libseccomp rules. Everything
// not listed traps (SIGSYS, reported by violation_report.h); clone3 fails with ENOSYS instead, so
// that glibc falls back to clone(2), whose flags a filter can check (threads only, never a fork).
#pragma once

#include <seccomp.h>

#include "base/result.h"

namespace vmmd::sandbox {

enum class Role { Main, Vcpu, Io, Migration };

inline constexpr Role kAllRoles[] = {Role::Main, Role::Vcpu, Role::Io, Role::Migration};

// "main loop", "vCPU", "I/O pool", "migration": the words of a violation report.
const char* roleName(Role role);

// Adds `role`'s allowlist to `filter` (made with a trapping default action). Adding several
// roles to one filter gives their union.
Status addAllowlist(scmp_filter_ctx filter, Role role);

}  // namespace vmmd::sandbox
