#!/usr/bin/env bash
# The quick-start demo: installs what is missing, builds, then runs the daemon the way an operator
# would, with its embedded defaults pointed at temporary state/run dirs (no root paths): vmmd
# supervises the demo guest (the project's probe guest), `vmctl` defines and starts it, lists it,
# shows its console while it checks the machine, presses its ACPI power button, and the guest
# powers itself off.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh release

build=$PWD/build
tmp=$(mktemp -d)
"$build/daemon/vmmd" --state-dir "$tmp/state" --run-dir "$tmp/run" --vmm "$build/vmm/vmm" --foreground \
  2>"$tmp/vmmd.log" &
vmmd=$!
console=""
cleanup() {
  [ -z "$console" ] || kill "$console" 2>/dev/null || true
  kill "$vmmd" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
export VMMD_SOCKET=$tmp/run/vmmd.sock
vmctl() { echo "\$ vmctl $*"; "$build/cli/vmctl" "$@"; }
for _ in $(seq 50); do [ -S "$VMMD_SOCKET" ] && break; sleep 0.1; done

cat >"$tmp/demo.json" <<JSON
{"schema": 1, "name": "demo", "memory": 128, "vcpus": 2,
 "kernel": "$build/tests/guest/probe/probe.elf",
 "cmdline": "serial cmdline memmap acpi cpus powerbutton"}
JSON
echo "== vmmd runs in $tmp (state, sockets, logs); the demo guest is the probe guest"
vmctl define "$tmp/demo.json"
vmctl start demo
vmctl list
echo "== the guest's serial console through vmmd (vmctl console demo):"
"$build/cli/vmctl" console demo </dev/null | tee "$tmp/console.txt" &
console=$!
for _ in $(seq 100); do grep -q 'name=ready' "$tmp/console.txt" && break; sleep 0.1; done
sleep 0.3  # let the console finish its line before ours
echo "== pressing the ACPI power button"
vmctl shutdown demo --timeout 20
wait "$console" 2>/dev/null || true
console=""
vmctl list
echo "== vmmd's log"
cat "$tmp/vmmd.log"
