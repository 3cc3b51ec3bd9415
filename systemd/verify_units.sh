#!/bin/sh
# Runs `systemd-analyze verify` on vmmd's units, with ExecStart pointing at the built vmmd (the
# installed path does not exist in a build tree). Exit 77 (skipped) without systemd-analyze.
set -eu
src=$1
vmmd=$2
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd-analyze not found; skipping"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/bin/vmmd|$vmmd|" "$src/vmmd.service" >"$tmp/vmmd.service"
cp "$src/vmmd.socket" "$tmp/vmmd.socket"
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$tmp/vmmd.socket" "$tmp/vmmd.service" 2>&1) || {
  echo "$out"; exit 1; }
# verify returns 0 on some warnings; treat any message about our units as a failure.
if echo "$out" | grep -E "vmmd\.(service|socket)" >/dev/null; then echo "$out"; exit 1; fi
# tmpfiles: syntax check without touching the system.
if command -v systemd-tmpfiles >/dev/null 2>&1; then
  systemd-tmpfiles --dry-run --create "$src/tmpfiles.d/vmmd.conf" >/dev/null 2>"$tmp/tmpfiles.err" || true
  if grep -iE "syntax|unknown|invalid|failed to parse" "$tmp/tmpfiles.err"; then exit 1; fi
fi
echo "units verified"
