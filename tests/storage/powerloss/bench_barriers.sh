#!/usr/bin/env bash
# What the qcow2 write-ordering barriers cost: `bench` write rows for two vmm-img builds (before
# and after a change) and qemu-img, on fresh copies of the same new image, in one run.
#   tests/storage/powerloss/bench_barriers.sh VMM_IMG_BEFORE VMM_IMG_AFTER
# Rows: allocating writes (every request lands in a cluster not allocated yet: one request per
# cluster of a new 1 GiB image, 64 KiB clusters, BENCH_COUNT requests, default 4000) and rewrites (the same requests again), 4 KiB and
# 64 KiB requests, depth 16, page cache (-t writeback); and allocating writes with a flush every
# 64 requests (--flush-interval, as a guest's journal commits), where the data goes to the disk
# anyway. Numbers are IOPS, best of BENCH_RUNS (2).
set -euo pipefail
before=${1:?vmm-img before}
after=${2:?vmm-img after}
runs=${BENCH_RUNS:-2}
count=${BENCH_COUNT:-4000}
cache=${BENCH_CACHE:-writeback}
command -v qemu-img >/dev/null || { echo "qemu-img not installed"; exit 0; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-barrier-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
qemu-img create -q -f qcow2 -o cluster_size=65536 "$dir/new.qcow2" 1G

secs() { "$@" | awk '/Run completed in/ { print $4 }'; }
best() { sort -g | head -1; }
iops() { awk -v c="$count" -v t="$1" 'BEGIN { printf "%.0f", c / t }'; }

declare -A result
for size in 4096 65536; do
  for tool in before after qemu; do
    case $tool in
      before) cmd=("$before" bench) ;;
      after) cmd=("$after" bench) ;;
      qemu) cmd=(qemu-img bench) ;;
    esac
    alloc=(); rewrite=(); flushed=()
    for ((i = 0; i < runs; i++)); do
      cp "$dir/new.qcow2" "$dir/run.qcow2"
      args=(-f qcow2 -w -t "$cache" -d 16 -c "$count" -s "$size" -S 65536 "$dir/run.qcow2")
      alloc+=("$(secs "${cmd[@]}" "${args[@]}")")
      rewrite+=("$(secs "${cmd[@]}" "${args[@]}")")
      qemu-img check -q "$dir/run.qcow2"
      cp "$dir/new.qcow2" "$dir/run.qcow2"
      flushed+=("$(secs "${cmd[@]}" --flush-interval=64 "${args[@]}")")
      echo "$((size / 1024))k $tool: allocating ${alloc[-1]} s, rewrite ${rewrite[-1]} s, allocating+flush ${flushed[-1]} s" >&2
    done
    result[$size,$tool,alloc]=$(iops "$(printf '%s\n' "${alloc[@]}" | best)")
    result[$size,$tool,rewrite]=$(iops "$(printf '%s\n' "${rewrite[@]}" | best)")
    result[$size,$tool,flushed]=$(iops "$(printf '%s\n' "${flushed[@]}" | best)")
  done
done

printf '| %-34s | %10s | %10s | %7s | %14s |\n' "bench -t $cache, depth 16 (IOPS)" before after after/b "qemu-img $(qemu-img --version | awk 'NR==1 {print $3}')"
printf '|%s|%s|%s|%s|%s|\n' ------------------------------------ ------------ ------------ --------- ----------------
for size in 4096 65536; do
  for kind in alloc rewrite flushed; do
    case $kind in
      alloc) label="$((size / 1024))k allocating writes" ;;
      rewrite) label="$((size / 1024))k rewrites" ;;
      flushed) label="$((size / 1024))k allocating, flush every 64" ;;
    esac
    b=${result[$size,before,$kind]} a=${result[$size,after,$kind]} q=${result[$size,qemu,$kind]}
    printf '| %-34s | %10s | %10s | %6.2fx | %14s |\n' "$label" "$b" "$a" "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')" "$q"
  done
done
