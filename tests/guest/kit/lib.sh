# Shell helpers shared by the guest kit and the nested tier (source this file; bash).
# Everything downloaded or built goes under $VMMD_CACHE so that reruns are fast.

# Downloads and builds are cached across runs; without a HOME (some CI runners) under /var/tmp.
VMMD_CACHE=${VMMD_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/vmmd}
KIT_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

kit_log() { [ -n "${KIT_QUIET:-}" ] || echo "kit: $*" >&2; }
kit_die() { echo "kit: error: $*" >&2; exit 1; }

# kit_fetch_deb PACKAGE -> prints the path of the cached .deb (downloads it with apt-get once).
kit_fetch_deb() {
  local pkg=$1 dir="$VMMD_CACHE/debs" deb
  mkdir -p "$dir"
  deb=$(ls -1 "$dir/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n1)
  if [ -z "$deb" ]; then
    kit_log "apt-get download $pkg"
    (cd "$dir" && apt-get download -q "$pkg" >/dev/null 2>&1) || kit_die "apt-get download $pkg failed"
    deb=$(ls -1 "$dir/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n1)
  fi
  [ -n "$deb" ] || kit_die "no .deb for $pkg"
  echo "$deb"
}

# kit_kernel_package -> the versioned cloud kernel package (linux-image-6.1.0-N-cloud-amd64).
# $VMMD_KIT_KERNEL overrides; without apt metadata the newest cached .deb is used.
kit_kernel_package() {
  if [ -n "${VMMD_KIT_KERNEL:-}" ]; then echo "$VMMD_KIT_KERNEL"; return; fi
  local pkg
  pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)
  if [ -z "$pkg" ] && ! ls "$VMMD_CACHE"/debs/linux-image-*-cloud-amd64_*.deb >/dev/null 2>&1; then
    # A fresh machine may have no package lists yet.
    kit_log "apt-get update (no package lists)"
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq >/dev/null 2>&1 || true
    else sudo -n apt-get update -qq >/dev/null 2>&1 || true; fi
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
          sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)
  fi
  if [ -z "$pkg" ]; then
    pkg=$(ls -1 "$VMMD_CACHE/debs/" 2>/dev/null | sed -n 's/^\(linux-image-[0-9][^_]*-cloud-amd64\)_.*/\1/p' |
          sort -V | tail -n1)
  fi
  [ -n "$pkg" ] || kit_die "cannot resolve linux-image-cloud-amd64 (apt-get update?)"
  echo "$pkg"
}

# kit_copy_elf STAGE BINARY [DEST]: copies an ELF program (to DEST inside STAGE, default its own
# path) together with every shared library the loader lists for it, and the loader itself. The
# program goes without its debug sections (symbols stay): a -g build of vmm or vmmd is mostly
# DWARF, and L1 unpacks everything into its RAM (an L1 whose root file system filled up lost the
# end of its initramfs and could not write /etc).
kit_copy_elf() {
  local stage=$1 bin=$2 dest=${3:-$2} loader=/lib64/ld-linux-x86-64.so.2 lib
  install -D -m 0755 "$bin" "$stage$dest"
  strip --strip-debug "$stage$dest" 2>/dev/null || install -m 0755 "$bin" "$stage$dest"
  readelf -l "$bin" 2>/dev/null | grep -q 'program interpreter' || return 0  # static
  "$loader" --list "$bin" >/dev/null 2>&1 || kit_die "$loader --list $bin failed"
  for lib in $("$loader" --list "$bin" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
    [ -e "$stage$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$stage$lib"
  done
  [ -e "$stage$loader" ] || install -D -m 0755 "$(readlink -f "$loader")" "$stage$loader"
}

# kit_busybox STAGE: busybox-static at /bin/busybox and a symlink for every applet in /bin.
kit_busybox() {
  local stage=$1 applet
  install -D -m 0755 "$(command -v busybox)" "$stage/bin/busybox"
  for applet in $("$stage/bin/busybox" --list); do
    [ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
  done
  mkdir -p "$stage/dev" "$stage/proc" "$stage/sys" "$stage/run" "$stage/tmp" "$stage/etc" "$stage/sbin"
}

# kit_hash FILE|DIR... -> a short content hash (for cache keys)
kit_hash() {
  find "$@" -type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}

# kit_rootfs_tarball NAME SETUP PACKAGE...: a Debian 12 root file system (debootstrap bookworm,
# minbase plus PACKAGEs), set up by the shell function SETUP ROOT, cached as
# $VMMD_CACHE/NAME/rootfs-KEY.tar with KEY a hash of the calling script (its package list and
# setup), so a changed script builds a new one and the older tarballs go. Prints the tarball's
# path. Needs root and deb.debian.org ($VMMD_DEBIAN_MIRROR) the first time; a few minutes.
kit_rootfs_tarball() {
  local name=$1 setup=$2 dir key tarball root include start
  shift 2
  key=$(sha256sum <"$0" | cut -c1-16)  # the content only: any checkout shares the cache
  dir="$VMMD_CACHE/$name"
  tarball="$dir/rootfs-$key.tar"
  if [ -f "$tarball" ]; then echo "$tarball"; return 0; fi
  [ "$(id -u)" -eq 0 ] || kit_die "debootstrap needs root"
  command -v debootstrap >/dev/null || kit_die "debootstrap is missing (scripts/install-deps.sh)"
  mkdir -p "$dir"
  # One build at a time (scripts/test.sh starts them in the background while it compiles): a
  # second caller waits for the first and takes its tarball. The lock goes with the process.
  local lock
  exec {lock}>"$dir/.build.lock"
  flock "$lock"
  if [ -f "$tarball" ]; then exec {lock}>&-; echo "$tarball"; return 0; fi
  root=$(mktemp -d "$dir/build.XXXXXX")
  # shellcheck disable=SC2064  # the path now: the trap outlives this function's locals
  trap "umount -R '$root/proc' '$root/sys' '$root/dev' 2>/dev/null || true; rm -rf '$root'" EXIT
  kit_log "debootstrap bookworm ($# packages and their dependencies; minutes)"
  start=$(date +%s)
  include=$(IFS=,; echo "$*")
  debootstrap --variant=minbase --include="$include" bookworm "$root" "${VMMD_DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
    >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; kit_die "debootstrap failed (log: $root.log)"; }
  rm -f "$root.log"
  "$setup" "$root"
  ls "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* >/dev/null || kit_die "no kernel or initramfs in the root file system"
  kit_log "debootstrap took $(( $(date +%s) - start ))s"
  tar -C "$root" --numeric-owner --xattrs -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  local stale
  for stale in "$dir"/rootfs-*.tar; do  # earlier package lists' tarballs
    [ "$stale" = "$tarball" ] || rm -f "$stale"
  done
  exec {lock}>&-
  echo "$tarball"
}
