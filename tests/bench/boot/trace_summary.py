#!/usr/bin/env python3
"""Summarizes boot traces (tests/bench/boot/profile.sh --trace): for each traced L2 boot, where the guest's
time went between its first traced event and userspace, from the kernel's own trace events.

  cpu        time each task ran (sched_switch to sched_switch); "idle" is the idle task: a guest
             that waits for its VMM or for a timer shows it here, a CPU-bound boot shows none
  initcalls  the slowest initcalls (initcall_start to initcall_finish, wall time: an initcall that
             waits for a kernel thread includes that thread's run)
  work       the longest workqueue items (wall time, preemption included)

  trace_summary.py LOG
"""
import collections
import re
import sys


def parse(path):
    runs, current = [], None
    with open(path, errors="replace") as log:
        for line in log:
            line = line.rstrip("\r\n")
            header = re.match(r"TRACE vmm=(\S+) ready_ms=(\S+) uptime=(\S+)", line)
            if header:
                current = {"kind": header[1], "ready_ms": header[2], "uptime": header[3], "events": []}
                runs.append(current)
                continue
            event = re.match(r"TRACE vmm=(\S+) (\d+\.\d+) (\S+) (\S+): ?(.*)", line)
            if event and current is not None and current["kind"] == event[1]:
                current["events"].append((float(event[2]), event[3], event[4], event[5]))
    return runs


def task_name(task):
    return "idle" if task.startswith("<idle>") else re.sub(r"-\d+$", "", task)


def summarize(run):
    events = run["events"]
    cpu, last = collections.Counter(), None
    for time, task, name, _ in events:
        if name == "sched_switch":
            if last is not None:
                cpu[task_name(task)] += time - last
            last = time
    started, initcalls = {}, []
    for time, _, name, detail in events:
        function = detail.split()[0].replace("func=", "") if detail else ""
        if name == "initcall_start":
            started[function] = time
        elif name == "initcall_finish" and function in started:
            initcalls.append((time - started[function], started[function], function))
    running, work = {}, collections.Counter()
    for time, task, name, detail in events:
        if name == "workqueue_execute_start":
            running[task] = (time, detail.strip())
        elif name == "workqueue_execute_end" and task in running:
            work[running[task][1]] += time - running[task][0]
            del running[task]
    span = (events[-1][0] - events[0][0]) if events else 0
    print(f"{run['kind']}: launch->userspace {run['ready_ms']} ms, guest uptime {run['uptime']} s, "
          f"{len(events)} events over {span:.2f} s (from {events[0][0] if events else 0:.2f} s)")
    print("  cpu:       " + ", ".join(f"{k} {v:.3f}" for k, v in cpu.most_common(8)) +
          ("" if "idle" in cpu else "  (never idle)"))
    print("  initcalls: " + ", ".join(f"{f} {d:.3f}@{s:.2f}" for d, s, f in sorted(initcalls, reverse=True)[:8]))
    print("  work:      " + ", ".join(f"{k} {v:.3f}" for k, v in work.most_common(6)))


def main():
    runs = parse(sys.argv[1])
    if not runs:
        print("trace_summary: no traced boot in the log", file=sys.stderr)
        return 1
    for run in runs:
        summarize(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
