#!/usr/bin/env python3
"""Which dependencies would CI's desktop step (`cargo test -p tessera-desktop`) compile again after the README's
`cargo test` (the default members) has compiled them? A unit is rebuilt when its features, its profile (cargo
builds a dependency shared by a build script and normal code with the normal profile) or any dependency
below it differ. Compares the two builds' unit graphs (`--unit-graph`, read with `RUSTC_BOOTSTRAP=1` because
the flag is unstable; nothing is built) and lists the rebuilt units of packages both builds use. Fails when
there are more than MAX (a few tiny crates remain whose host-side variants differ); the fix is to add the
package to workspace-hack/Cargo.toml with the union of both sides' features ([build-dependencies] for the
host side: proc macros, build scripts and what they use)."""

import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX = 5


def unit_graph(args):
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    out = subprocess.run(
        ["cargo", "test", "--locked", "--no-run", "--unit-graph", "-Z", "unstable-options", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, check=True,
    ).stdout
    units = json.loads(out)["units"]
    keys = {}

    def key(i):
        # Like cargo's unit metadata: the unit's own identity and its dependencies' keys.
        if i not in keys:
            u = units[i]
            deps = sorted(key(d["index"]) for d in u["dependencies"])
            own = [u["pkg_id"], u["target"]["name"], u["target"]["kind"], u["mode"], u["features"], u["profile"], deps]
            keys[i] = hashlib.sha1(json.dumps(own, sort_keys=True).encode()).hexdigest()
        return keys[i]

    return [(key(i), u) for i, u in enumerate(units)]


def package(u):
    return u["pkg_id"].rsplit("/", 1)[-1].split("#")[-1]


def identity(u):
    """A unit without its dependencies: the same identity with other dependencies is a rebuild."""
    return package(u), u["target"]["name"], u["mode"], tuple(u["features"]), json.dumps(u["profile"], sort_keys=True)


def main():
    default = unit_graph([])
    desktop = unit_graph(["-p", "tessera-desktop"])
    built = {k for k, _ in default}
    own = {identity(u) for _, u in default}
    rebuilt = sorted({
        f'{package(u)} ({u["target"]["name"]}, {u["mode"]})'
        for k, u in desktop
        if k not in built and not package(u).startswith("tessera-") and identity(u) in own
    })
    print(f"shared dependency units the desktop step would compile again: {len(rebuilt)} (at most {MAX} allowed)")
    for r in rebuilt:
        print(f"  {r}")
    return 1 if len(rebuilt) > MAX else 0


if __name__ == "__main__":
    sys.exit(main())
