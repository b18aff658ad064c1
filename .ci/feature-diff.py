#!/usr/bin/env python3
"""Lists the dependencies whose features differ between the README's `cargo test` (the default members) and
`cargo test -p tessera-desktop`, side by side (host side: proc macros and build scripts and what they use;
target side: the rest). Each such package, and everything built on it, would be compiled twice in CI. Prints
nothing and exits 0 when the two agree; otherwise add the union of the features to workspace-hack/Cargo.toml
([build-dependencies] for the host side) and run it again. Reads `cargo tree` only (no build)."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def features(args):
    """(package, version, side) -> set of feature lists, as `cargo tree` prints them."""
    out = subprocess.run(
        ["cargo", "tree", "--offline", "-e", "normal,build,dev", "-f", "{p} {f}", *args],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout
    found = {}
    stack = []  # (depth, on the host side)
    for line in out.splitlines():
        if not line.strip():
            stack = []
            continue
        m = re.match(r"^([│ ├└─]*)(.*)$", line)
        depth = len(m.group(1)) // 4
        rest = m.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        host = stack[-1][1] if stack else False
        if rest.startswith("["):  # [build-dependencies] / [dev-dependencies]
            stack.append((depth, host or rest.startswith("[build")))
            continue
        name, version, *tail = rest.split(" ")
        tail = " ".join(tail).replace("(*)", "")
        host = host or "(proc-macro)" in tail
        feats = re.sub(r"\([^)]*\)", "", tail).strip()
        found.setdefault((name, version, "host" if host else "target"), set()).add(feats)
        stack.append((depth, host))
    return found


def main():
    default = features([])
    desktop = features(["-p", "tessera-desktop"])
    differ = [k for k in sorted(set(default) & set(desktop)) if default[k] != desktop[k]]
    for name, version, side in differ:
        key = (name, version, side)
        print(f"{name} {version} ({side}): cargo test: {sorted(default[key])}; desktop: {sorted(desktop[key])}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
