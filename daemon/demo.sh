#!/bin/sh
# vmmd + vmctl demo without root paths: a daemon in temporary state/run dirs, the probe guest
# defined, started, shown through `vmctl list` and `vmctl console`, then shut down through ACPI.
# Needs a built tree (cmake -S . -B build -G Ninja && cmake --build build) and /dev/kvm.
set -eu
build=${BUILD:-build}
kernel=$(realpath "$build/tests/guest/probe/probe.elf")
tmp=$(mktemp -d)
"$build/daemon/vmmd" --state-dir "$tmp/state" --run-dir "$tmp/run" --foreground 2>"$tmp/vmmd.log" &
vmmd=$!
cleanup() { kill "$vmmd" 2>/dev/null || true; wait "$vmmd" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
export VMMD_SOCKET="$tmp/run/vmmd.sock"
vmctl() { "$build/cli/vmctl" "$@"; }
cat >"$tmp/demo.json" <<JSON
{"schema": 1, "name": "demo", "memory": 64, "vcpus": 2, "kernel": "$kernel", "cmdline": "powerbutton"}
JSON
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S "$VMMD_SOCKET" ] && break; sleep 0.1; done
set -x
vmctl define "$tmp/demo.json"
vmctl start demo
vmctl list
# The console replays what the guest printed since it started; Ctrl-] would detach.
timeout 2 "$build/cli/vmctl" console demo </dev/null || true
vmctl shutdown demo --timeout 20
vmctl list
set +x
echo "--- vmmd log ---"
cat "$tmp/vmmd.log"
