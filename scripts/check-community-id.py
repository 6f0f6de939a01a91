#!/usr/bin/env python3
"""Check the Community IDs in juno-analyze's JSON lines against an independent computation.

Usage: check-community-id.py SEED FILE.jsonl [FILE.jsonl ...]

Every line's `community_id` is recomputed from its `transport`, `client` and `server` with
pycommunityid (the spec's reference implementation, PyPI `communityid`, installed into the
project's virtualenv by scripts/setup.sh) when it can be imported, else with the few lines of
hashlib below, written from the spec (https://github.com/corelight/community-id-spec) — never
from the Rust code. Prints the number of lines checked and exits 1 on the first mismatch (or if
no line was checked).
"""
import base64
import hashlib
import ipaddress
import json
import struct
import sys

PROTO = {"tcp": 6, "udp": 17}


def spec_id(seed, proto, saddr, daddr, sport, dport):
    """Community ID v1 of a TCP or UDP flow, from the spec's pseudo code."""
    a = ipaddress.ip_address(saddr).packed
    b = ipaddress.ip_address(daddr).packed
    if not (a < b or (a == b and sport < dport)):
        a, b, sport, dport = b, a, dport, sport
    data = struct.pack("!H", seed) + a + b + struct.pack("!BBHH", proto, 0, sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def reference():
    """pycommunityid's calculator, or None when the package is not installed."""
    try:
        import communityid  # noqa: PLC0415
    except ImportError:
        return None

    def calc(seed, proto, saddr, daddr, sport, dport):
        make = communityid.FlowTuple.make_tcp if proto == 6 else communityid.FlowTuple.make_udp
        return communityid.CommunityID(seed).calc(make(saddr, daddr, sport, dport))

    return calc


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    seed = int(sys.argv[1])
    calc = reference()
    name = "pycommunityid" if calc else "hashlib (spec)"
    calc = calc or spec_id
    n = 0
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                e = json.loads(line)
                c, s = e["client"], e["server"]
                want = calc(seed, PROTO[e["transport"]], c["ip"], s["ip"], c["port"], s["port"])
                if e.get("community_id") != want:
                    print(f"{path}:{i}: community_id {e.get('community_id')!r}, {name} says {want!r}")
                    return 1
                n += 1
    print(f"{n} community_id values checked with {name}, seed {seed}")
    return 0 if n > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
