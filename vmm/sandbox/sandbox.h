// `-sandbox on`: the worker confines itself with seccomp, one allowlist per thread role.
//
// Order (a thread inherits its creator's filters, and filters only ever narrow):
//   1. prepare()        main thread, during setup: every role's filter compiled to BPF.
//   2. enterProcess()   main thread, once setup no longer opens files: no_new_privs, the SIGSYS
//                       reporter, and the union of all roles on every thread (TSYNC).
//   3. confineThread()  each thread narrows itself to its role: vCPU threads before their first
//                       KVM_RUN, I/O pool threads before their first request, and the main loop
//                       last, once the other threads exist (threads it starts later, vCPUs after
//                       a reset, keep its filter beneath their own).
// While the sandbox is off, confineThread() does nothing.
#pragma once

#include "base/result.h"
#include "vmm/sandbox/syscall_allowlist.h"

namespace vmmd::sandbox {

Status prepare();
Status enterProcess();
Status confineThread(Role role);

// Whether enterProcess() has run: the process is confined.
bool active();

}  // namespace vmmd::sandbox
