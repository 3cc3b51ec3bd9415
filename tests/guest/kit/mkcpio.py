#!/usr/bin/env python3
"""Writes an uncompressed newc cpio archive (the initramfs format) without needing root.

Usage: mkcpio.py OUT [DIR] [--file DEST=SRC]... [--node PATH:MODE:c|b:MAJOR:MINOR]...

Every file under DIR goes in with its path relative to DIR, owner 0:0 and mtime 0, in sorted
order, so the same tree always gives the same bytes. --node adds device nodes (e.g. /dev/console)
that an unprivileged user cannot create on disk. --file adds SRC (followed if a link) as DEST,
with the directories above it. Linux accepts several such archives
concatenated as one initramfs.
"""
import os
import shutil
import stat
import sys


def header(out, ino, mode, size, name, nlink=1, rdevmajor=0, rdevminor=0):
    name_b = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevmajor, rdevminor, len(name_b), 0]
    out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
    out.write(name_b)
    out.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))


def pad(out, size):
    out.write(b"\0" * ((4 - size % 4) % 4))


def contents(out, path, size):
    """The data of a regular file's entry: its bytes, padded."""
    with open(path, "rb") as f:
        shutil.copyfileobj(f, out, 1 << 20)
    pad(out, size)


def main(argv):
    out_path, rest = argv[1], argv[2:]
    root, nodes, files = None, [], []
    it = iter(rest)
    for arg in it:
        if arg == "--node":
            nodes.append(next(it))
        elif arg == "--file":
            files.append(next(it).split("=", 1))
        else:
            root = arg
    ino = 1
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as out:
        entries = []
        if root:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                rel = os.path.relpath(dirpath, root)
                if rel != ".":
                    entries.append(rel)
                for f in sorted(filenames):
                    entries.append(os.path.normpath(os.path.join(rel, f)))
                # symlinks to directories are listed in dirnames but not walked
                for d in dirnames:
                    if os.path.islink(os.path.join(dirpath, d)):
                        entries.append(os.path.normpath(os.path.join(rel, d)))
        seen_dirs = set()
        for rel in entries:
            path = os.path.join(root, rel)
            st = os.lstat(path)
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(path).encode()
                header(out, ino, stat.S_IFLNK | 0o777, len(target), rel)
                out.write(target)
                pad(out, len(target))
            elif stat.S_ISDIR(st.st_mode):
                if rel in seen_dirs:
                    continue
                seen_dirs.add(rel)
                header(out, ino, stat.S_IFDIR | perm, 0, rel, nlink=2)
            elif stat.S_ISREG(st.st_mode):
                header(out, ino, stat.S_IFREG | perm, st.st_size, rel)
                contents(out, path, st.st_size)
            else:
                continue
            ino += 1
        for dest, src in files:
            parts = dest.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in seen_dirs:
                    seen_dirs.add(d)
                    header(out, ino, stat.S_IFDIR | 0o755, 0, d, nlink=2)
                    ino += 1
            st = os.stat(src)
            header(out, ino, stat.S_IFREG | stat.S_IMODE(st.st_mode), st.st_size, "/".join(parts))
            contents(out, src, st.st_size)
            ino += 1
        for spec in nodes:
            path, mode, kind, major, minor = spec.split(":")
            ftype = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
            header(out, ino, ftype | int(mode, 8), 0, path.lstrip("/"),
                   rdevmajor=int(major), rdevminor=int(minor))
            ino += 1
        header(out, 0, 0, 0, "TRAILER!!!")
        size = out.tell()
        out.write(b"\0" * ((512 - size % 512) % 512))
    os.replace(tmp, out_path)


if __name__ == "__main__":
    main(sys.argv)
