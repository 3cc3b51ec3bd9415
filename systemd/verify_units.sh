#!/bin/sh
# Installs the build tree the way a package does (`cmake --install --prefix /usr` into a scratch
# DESTDIR) and checks what landed there:
# - `systemd-analyze verify --root` on vmmd.socket and vmmd.service: unit syntax, and that
#   ExecStart's /usr/sbin/vmmd exists in that tree;
# - systemd-sysusers creates the vmmd group in the tree's /etc/group;
# - systemd-tmpfiles creates /run/vmmd (root:vmmd 0750) and /var/lib/vmmd from the tree's config;
# - the programs, man pages and bash completion are where the units and man expect them.
# usage: verify_units.sh BUILD_DIR
set -eu
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

DESTDIR=$root cmake --install "$build" --prefix /usr >"$root.install.log" 2>&1 || {
  cat "$root.install.log"; rm -f "$root.install.log"; fail "cmake --install"; }
rm -f "$root.install.log"

unit_dir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
for f in /usr/sbin/vmmd /usr/bin/vmm /usr/bin/vmctl /usr/bin/vmm-img \
         "$unit_dir/vmmd.service" "$unit_dir/vmmd.socket" \
         /usr/lib/tmpfiles.d/vmmd.conf /usr/lib/sysusers.d/vmmd.conf \
         /usr/share/man/man1/vmctl.1 /usr/share/man/man1/vmm.1 /usr/share/man/man1/vmm-img.1 \
         /usr/share/man/man8/vmmd.8 /usr/share/bash-completion/completions/vmctl \
         /usr/share/doc/vmmd/README.md; do
  [ -e "$root$f" ] || fail "$f not installed"
done
for f in /usr/sbin/vmmd /usr/bin/vmm /usr/bin/vmctl /usr/bin/vmm-img; do
  [ -x "$root$f" ] || fail "$f not executable"
done
grep -q "^ExecStart=/usr/sbin/vmmd .*--vmm /usr/bin/vmm\$" "$root$unit_dir/vmmd.service" ||
  fail "ExecStart does not name the installed programs: $(grep ExecStart "$root$unit_dir/vmmd.service")"

# verify resolves ExecStart= inside --root, and the targets our units hook into as well: the
# tree gets this system's own units beside ours (as on an installed system). Any message naming
# our units is a failure (verify exits 0 on some warnings).
cp -rn "$unit_dir/." "$root$unit_dir/"
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no --root="$root" \
        "$root$unit_dir/vmmd.socket" "$root$unit_dir/vmmd.service" 2>&1) || { echo "$out"; fail "systemd-analyze verify"; }
if echo "$out" | grep -E "vmmd\.(service|socket)" >/dev/null; then echo "$out"; fail "systemd-analyze verify warned"; fi

mkdir -p "$root/etc"
: >"$root/etc/group"; : >"$root/etc/passwd"
systemd-sysusers --root="$root" >/dev/null 2>&1 || fail "systemd-sysusers"
grep -q "^vmmd:" "$root/etc/group" || fail "sysusers did not create the vmmd group"

systemd-tmpfiles --root="$root" --create vmmd.conf 2>&1 || fail "systemd-tmpfiles"
gid=$(awk -F: '$1 == "vmmd" {print $3}' "$root/etc/group")
[ "$(stat -c '%a %u %g' "$root/run/vmmd")" = "750 0 $gid" ] ||
  fail "/run/vmmd is $(stat -c '%a %u %g' "$root/run/vmmd"), wanted 750 0 $gid"
[ -d "$root/var/lib/vmmd" ] || fail "/var/lib/vmmd not created"
echo "installed tree verified"
