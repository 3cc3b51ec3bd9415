#!/usr/bin/env bash
# The quick-start demo: installs what is missing, builds, and boots the demo guest (the project's
# probe guest) under vmm with its console on this terminal, until it powers itself off.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh release
echo "== booting the probe guest under vmm (2 vCPUs, 128 MiB); it checks the machine and powers off"
set -x
./build/vmm/vmm -name demo -m 128 -smp 2 -nodefaults -nographic -serial stdio \
  -kernel build/tests/guest/probe/probe.elf -append "serial cmdline memmap acpi cpus poweroff"
