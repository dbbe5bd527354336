#!/usr/bin/env python3
"""Fails when a source file includes a header from a module above it.

Dependencies point one way: core <- tls, cache <- route <- proto <- tools.
(TigerBeetle's tidy-test idea: the rule is checked, not hoped for.)
"""
import os
import re
import sys

RANK = {"core": 0, "tls": 1, "cache": 1, "route": 2, "proto": 3, "tools": 4}
# tls and cache are siblings: neither may include the other.
SIBLINGS = {("tls", "cache"), ("cache", "tls")}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)


def main(root):
    failures = []
    checked = 0
    for module in RANK:
        base = os.path.join(root, module)
        for dirpath, _, files in os.walk(base):
            for f in files:
                if not f.endswith((".h", ".cc")):
                    continue
                path = os.path.join(dirpath, f)
                checked += 1
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
                for target in INCLUDE.findall(text):
                    if target not in RANK or target == module:
                        continue
                    if RANK[target] > RANK[module] or (module, target) in SIBLINGS:
                        failures.append(f"{os.path.relpath(path, root)}: includes {target}/ "
                                        f"({module} must not depend on {target})")
    for line in failures:
        print(line)
    print(f"layering: {checked} files checked, {len(failures)} upward includes")
    print(f"{1 if not failures else 0} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
