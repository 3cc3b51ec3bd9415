#!/usr/bin/env python3
"""Where an L1 that stopped making progress is spinning: samples every vCPU's registers through
QEMU's monitor a few times and names the kernel function each RIP lies in, from the kernel's
text symbols that L1's init saved (/proc/kallsyms; L1 runs with nokaslr). A RIP outside the
kernel's text is L2 code (the vCPU is in guest mode) or L1 user space.

    stall_report.py MONITOR_SOCKET KALLSYMS [SAMPLES [RAW_DUMP_FILE]]
"""
import bisect
import re
import socket
import sys
import time


def load_symbols(path):
    addresses, names = [], []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "tTwW":
                    addresses.append(int(parts[0], 16))
                    names.append(" ".join(parts[2:]))
    except OSError as e:
        print(f"stall_report: no symbols ({e})")
    order = sorted(range(len(addresses)), key=addresses.__getitem__)
    return [addresses[i] for i in order], [names[i] for i in order]


def symbol(addresses, names, rip):
    if not addresses or rip < addresses[0] or rip >= 0xffffffffff000000:
        return "(not kernel text: L2 or user space)"
    i = bisect.bisect_right(addresses, rip) - 1
    return f"{names[i]}+{rip - addresses[i]:#x}"


def ask(sock, command):
    sock.sendall(command.encode() + b"\n")
    reply, deadline = b"", time.monotonic() + 3
    sock.settimeout(0.3)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            if reply:
                break
            continue
        if not chunk:
            break
        reply += chunk
    # The monitor echoes the command with terminal escapes, and ends lines with CR LF.
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", reply.decode(errors="replace")).replace("\r", "")
    return "\n".join(line for line in text.split("\n") if not line.startswith("(qemu)") and
                     "info " not in line)


def main():
    monitor, kallsyms = sys.argv[1], sys.argv[2]
    samples = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    addresses, names = load_symbols(kallsyms)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(monitor)
    ask(sock, "")  # the banner
    print(ask(sock, "info cpus").strip())
    for sample in range(samples):
        dump = ask(sock, "info registers -a")
        if sample == 0 and len(sys.argv) > 4:
            with open(sys.argv[4], "w") as raw:
                raw.write(dump)
        for cpu, block in enumerate(re.split(r"^CPU#\d+\s*$", dump, flags=re.M)[1:]):
            rip = re.search(r"RIP=([0-9a-f]+)", block)
            cs = re.search(r"CS =([0-9a-f]+)", block)
            hlt = re.search(r"HLT=(\d)", block)
            cr3 = re.search(r"CR3=([0-9a-f]+)", block)
            if not rip:
                continue
            value = int(rip.group(1), 16)
            print(f"sample {sample} cpu {cpu}: RIP={value:#x} CS={cs.group(1) if cs else '?'} "
                  f"CR3={cr3.group(1) if cr3 else '?'} HLT={hlt.group(1) if hlt else '?'} "
                  f"{symbol(addresses, names, value)}")
        time.sleep(0.5)


if __name__ == "__main__":
    main()
