#!/usr/bin/env python3
"""Checks that analyzer/src's top-level modules import one way (docs/architecture.md).

Each module may import (through `crate::`) only modules of an earlier layer. Doc comments and
comments are ignored; test code counts like any other. Exits 1 and lists every import that
points the wrong way.
"""
import pathlib
import re
import sys

# Layers, first to last; modules in one layer may not import each other.
LAYERS = [
    ["model", "read", "progress"],
    ["input"],
    ["decode"],
    ["l7"],
    ["proto"],
    ["conn"],
    ["enrich"],
    ["pipeline"],
    ["sink"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "analyzer/src")
bad = []
seen = set()
for path in sorted(src.rglob("*.rs")):
    rel = path.relative_to(src)
    top = rel.parts[0].removesuffix(".rs")
    if top in ("lib", "main"):
        continue
    if top not in RANK:
        bad.append(f"{rel}: module `{top}` is in no layer of scripts/check-layers.py")
        continue
    seen.add(top)
    for n, line in enumerate(path.read_text().splitlines(), 1):
        code = line.split("//", 1)[0]
        for dep in re.findall(r"\bcrate::([a-z_0-9]+)", code):
            if dep == top or dep not in RANK:
                continue
            if RANK[dep] >= RANK[top]:
                bad.append(f"{rel}:{n}: `{top}` imports `{dep}`, which is not an earlier layer")
missing = set(RANK) - seen
if missing:
    bad.append(f"layers list modules that do not exist: {sorted(missing)}")
for b in bad:
    print(b)
if bad:
    sys.exit(1)
print(f"layers: {len(seen)} modules import one way")
