# Sourced by tests/bench/boot/run.sh and profile.sh: bench_clock CLOCK picks the clock L1 runs on
# for every figure of the benchmark (tests/bench/boot/README.md, "The instruction clock").
#   instructions  QEMU's -icount shift=0 for L1: its clock advances 1 ns per instruction the
#                 emulated CPU executes (L1's kernel, the VMM, the L2 guest alike) and with real time
#                 while L1 is idle. Two boots of the same work differ by ~1 %; what the emulator
#                 spends translating code and on its memory accesses, which moves a boot by up to 2x
#                 from one L1 boot to the next and has no counterpart on hardware, counts for nothing.
#   wall          L1's clock is real time: whatever the emulator costs counts, noise included.
bench_clock() {
  case "$1" in
    instructions) export NESTED_L1_ICOUNT=shift=0 ;;
    wall) unset NESTED_L1_ICOUNT ;;
    *) echo "bench/boot: --clock instructions or wall, not $1" >&2; return 2 ;;
  esac
}
