#!/usr/bin/env python3
"""Checks the man pages against the programs they describe.

usage: check_man_pages.py BUILT_PAGES_DIR VMCTL VMMD VMM VMM_IMG

- man renders each page without a warning (groff's and man's own, -ww);
- every command and option that a program's --help lists appears, in bold, in its page's
  scdoc source (so a command added to vmctl without a line in vmctl(1) fails here).
"""
import os
import re
import subprocess
import sys

SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))


def help_text(program):
    done = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def render_warnings(page_path):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat")
    done = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", page_path],
                          capture_output=True, text=True, env=env, timeout=60)
    problems = []
    if done.returncode != 0:
        problems.append(f"man exited with {done.returncode}")
    if done.stderr.strip():
        problems.append(done.stderr.strip())
    if "NAME" not in done.stdout or "SYNOPSIS" not in done.stdout:
        problems.append("rendered page lacks NAME or SYNOPSIS")
    return problems


def commands_in(help_output):
    """Command words: a help line's first word after two spaces (`  start NAME`), and the word
    after ` | ` when a NAME follows it (`pause NAME | resume NAME`)."""
    found = set()
    for line in help_output.splitlines():
        if line.startswith(("Options", "Exit codes")):
            break  # what follows is not commands
        first = re.match(r"^  ([a-z][a-z-]*)(\s|$)", line)
        if first:
            found.add(first.group(1))
        found.update(re.findall(r"\|\s+([a-z][a-z-]*) NAME", line))
    return found


def options_in(help_output):
    """Every option token: `--json`, `--state-dir`, and the single-dash QEMU-style `-kernel`."""
    return set(re.findall(r"(?:^|(?<=[\s\[]))(--?[a-zA-Z][a-zA-Z-]*)", help_output, re.MULTILINE))


def missing_from(page_source, words):
    return sorted(w for w in words if f"*{w}*" not in page_source)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    built_dir, vmctl, vmmd, vmm, vmm_img = sys.argv[1:]
    pages = {"vmctl.1": vmctl, "vmmd.8": vmmd, "vmm.1": vmm, "vmm-img.1": vmm_img}
    failures = []
    for page, program in pages.items():
        for problem in render_warnings(os.path.join(built_dir, page)):
            failures.append(f"{page}: {problem}")
        with open(os.path.join(SOURCE_DIR, page + ".scd"), encoding="utf-8") as f:
            source = f.read()
        text = help_text(program)
        wanted = options_in(text)
        if page in ("vmctl.1", "vmm-img.1"):
            wanted |= commands_in(text)
        absent = missing_from(source, wanted)
        if absent:
            failures.append(f"{page}: not documented: {' '.join(absent)}")
        print(f"{page}: {len(wanted)} commands and options checked")
    for failure in failures:
        print("FAIL", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
