#!/usr/bin/env bash
# Storage benchmark: vmm-img against qemu-img, same parameters, same run; prints a table.
#   tests/bench/storage/run.sh [path/to/vmm-img]
# Rows: convert raw -> qcow2 (1 GiB, 3/4 random data and 1/4 holes, timed including `sync`), and
# `bench` 4k requests scattered over the image (step = 7919 blocks, wrapping) with O_DIRECT
# (-t none) and through the page cache (-t writeback), reads and writes on a qcow2 image.
# qemu-img bench runs with thread-pool AIO and with Linux AIO (-n); the faster counts. Each
# number is the best of three runs (the disk of a VM is noisy).
# Environment: BENCH_SIZE_MB (default 1024), BENCH_COUNT (requests, default 50000),
# BENCH_DEPTH (default 16), BENCH_STRICT=1 fails when vmm-img is slower on a row.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vmm_img=${1:-$here/../../../build/storage/vmm-img}
size_mb=${BENCH_SIZE_MB:-1024}
count=${BENCH_COUNT:-50000}
depth=${BENCH_DEPTH:-16}
step=$((4096 * 7919))
command -v qemu-img >/dev/null || { echo "qemu-img not installed: skipping the storage benchmark"; exit 0; }
[ -x "$vmm_img" ] || { echo "run.sh: $vmm_img is not executable" >&2; exit 2; }
vmm_img=$(cd "$(dirname "$vmm_img")" && pwd)/$(basename "$vmm_img")
dir=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"

now_ns() { date +%s%N; }
# Seconds (float) a command takes, including a sync of everything it wrote.
timed() {
  local t0 t1
  t0=$(now_ns)
  "$@" >/dev/null
  sync
  t1=$(now_ns)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}
# "Run completed in X seconds." -> X
bench_secs() { "$@" | awk '/Run completed in/ { print $4 }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) ? a : b }'; }

echo "preparing a ${size_mb} MiB source image..."
head -c $((size_mb * 3 / 4))M /dev/urandom > src.raw
truncate -s "${size_mb}M" src.raw
sync

rows=()
worse=0
row() {  # name unit qemu_value vmm_value (higher is better)
  local ratio
  ratio=$(awk -v q="$3" -v v="$4" 'BEGIN { printf "%.2f", (q > 0) ? v / q : 0 }')
  rows+=("$(printf '| %-50s | %12s %-5s | %12s %-5s | %5sx |' "$1" "$3" "$2" "$4" "$2" "$ratio")")
  awk -v r="$ratio" 'BEGIN { exit !(r < 1.0) }' && worse=$((worse + 1))
  return 0
}

# convert: best of five runs each, alternating.
q_best=999999; v_best=999999; q_all=""; v_all=""
for i in 1 2 3 4 5; do
  rm -f q.qcow2 v.qcow2; sync
  t=$(timed qemu-img convert -O qcow2 src.raw q.qcow2); q_all="$q_all $t"
  q_best=$(min "$q_best" "$t")
  rm -f v.qcow2; sync
  t=$(timed "$vmm_img" convert -O qcow2 src.raw v.qcow2); v_all="$v_all $t"
  v_best=$(min "$v_best" "$t")
done
echo "convert seconds, qemu-img:$q_all"
echo "convert seconds, vmm-img: $v_all"
qemu-img compare -q src.raw v.qcow2 || { echo "run.sh: vmm-img convert result differs from the source" >&2; exit 1; }
row "convert raw->qcow2 ${size_mb} MiB (+sync)" "MiB/s" \
  "$(awk -v s="$size_mb" -v t="$q_best" 'BEGIN { printf "%.0f", s / t }')" \
  "$(awk -v s="$size_mb" -v t="$v_best" 'BEGIN { printf "%.0f", s / t }')"

# bench: best of three runs per tool. Each tool has its own copy of the converted image; a first
# write pass (its own row: the writes into the image's holes allocate clusters) brings both copies
# to the steady state the other write rows measure.
iops() { awk -v c="$count" -v t="$1" 'BEGIN { printf "%.0f", (t > 0) ? c / t : 0 }'; }
cp --sparse=always q.qcow2 bq.qcow2
cp --sparse=always q.qcow2 bv.qcow2
cp --sparse=always q.qcow2 bq2.qcow2
cp --sparse=always q.qcow2 bv2.qcow2
sync
alloc_args=(-c "$count" -d "$depth" -s 4096 -S "$step" -t none -w)
qa=$(bench_secs qemu-img bench -f qcow2 "${alloc_args[@]}" bq.qcow2)
qa2=$(bench_secs qemu-img bench -f qcow2 -n "${alloc_args[@]}" bq2.qcow2 2>/dev/null || true)
va=$(bench_secs "$vmm_img" bench -f qcow2 "${alloc_args[@]}" bv.qcow2)
va2=$(bench_secs "$vmm_img" bench -f qcow2 "${alloc_args[@]}" bv2.qcow2)
# Two tries each (qemu-img: thread pool and Linux AIO), each on a fresh copy.
row "bench 4k rand write -t none, allocating (1st pass)" "IOPS" "$(iops "$(min "$qa" "${qa2:-999999}")")" "$(iops "$(min "$va" "$va2")")"
rm -f bq2.qcow2 bv2.qcow2
for cache in none writeback; do
  for mode in read write; do
    w=""; [ "$mode" = write ] && w="-w"
    args=(-c "$count" -d "$depth" -s 4096 -S "$step" -t "$cache" $w)
    q_best=999999; v_best=999999
    for i in 1 2 3; do
      qt=$(bench_secs qemu-img bench -f qcow2 "${args[@]}" bq.qcow2)
      qn=$(bench_secs qemu-img bench -f qcow2 -n "${args[@]}" bq.qcow2 2>/dev/null || true)
      vt=$(bench_secs "$vmm_img" bench -f qcow2 "${args[@]}" bv.qcow2)
      q_best=$(min "$q_best" "$(min "$qt" "${qn:-999999}")")
      v_best=$(min "$v_best" "$vt")
      echo "bench $mode -t $cache seconds: qemu-img $qt (threads) ${qn:-?} (linux-aio), vmm-img $vt"
    done
    row "bench 4k rand $mode qcow2 -t $cache, depth $depth" "IOPS" "$(iops "$q_best")" "$(iops "$v_best")"
  done
done
qemu-img check -q bv.qcow2 || { echo "run.sh: image written by vmm-img bench fails qemu-img check" >&2; exit 1; }

echo
printf '| %-50s | %18s | %18s | %6s |\n' "benchmark" "qemu-img $(qemu-img --version | awk 'NR==1 {print $3}')" "vmm-img" "ratio"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..52})" "$(printf -- '-%.0s' {1..20})" "$(printf -- '-%.0s' {1..20})" "$(printf -- '-%.0s' {1..8})"
printf '%s\n' "${rows[@]}"
echo
if [ "$worse" -gt 0 ]; then
  echo "vmm-img slower than qemu-img on $worse row(s)"
  [ "${BENCH_STRICT:-0}" = 1 ] && exit 1
fi
exit 0
