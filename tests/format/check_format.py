#!/usr/bin/env python3
"""Fails when a C++ source differs from what clang-format (.clang-format) would write.

Style is checked, not hoped for; `clang-format -i FILE` fixes a failure.
"""
import os
import shutil
import subprocess
import sys

DIRS = ("core", "tls", "cache", "route", "proto", "tools", "bench", "tests")


def main(root):
    tool = shutil.which("clang-format")
    if tool is None:
        print("format: clang-format not found (Debian package clang-format)")
        return 1
    paths = []
    for d in DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            paths += [os.path.join(dirpath, f) for f in files if f.endswith((".h", ".cc"))]
    # One process for all files: clang-format names each file it would change.
    r = subprocess.run([tool, "--dry-run", "-Werror"] + sorted(paths), cwd=root,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    bad = sorted({os.path.relpath(line.split(":", 1)[0], root)
                  for line in r.stderr.splitlines() if ": error:" in line})
    if r.returncode != 0 and not bad:
        print(r.stderr)
        return 1
    for b in bad:
        print(f"format: {b} is not clang-formatted (clang-format -i {b})")
    print(f"format: {len(paths) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
