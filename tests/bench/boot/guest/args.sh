# Sourced by tests/bench/boot/run.sh and profile.sh: bench_guest_args GUEST sets guest_args to the
# tests/nested/run.sh arguments that give the L1 scenarios that guest (BENCH_BZIMAGE, BENCH_VMLINUX
# and BENCH_INITRD; unset, the scenarios boot the guest kit's Debian kernel and initramfs).
bench_guest_args() {
  guest_args=()
  case "$1" in
    debian) ;;
    minimal)
      local dir initrd
      dir=$("$(dirname "${BASH_SOURCE[0]}")/build.sh") || return 1
      initrd=$("$(dirname "${BASH_SOURCE[0]}")/initramfs.sh") || return 1
      guest_args=(--file "$dir/bzImage=/l2/min/bzImage" --file "$dir/vmlinux=/l2/min/vmlinux" --file "$initrd=/l2/min/initramfs.cpio"
                  --env BENCH_BZIMAGE=/l2/min/bzImage --env BENCH_VMLINUX=/l2/min/vmlinux --env BENCH_INITRD=/l2/min/initramfs.cpio) ;;
    *) echo "bench/boot: --guest debian or minimal, not $1" >&2; return 2 ;;
  esac
}
