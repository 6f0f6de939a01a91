#!/usr/bin/env python3
"""Score juno-analyze's conn.log against Zeek's own conn.log baselines.

Usage: score-conn-log.py [--analyzer BIN] [--corpus DIR] [--min PCT] [--verbose]

The corpus (default fixtures/zeek-conn) has a manifest.tsv of Zeek test traces (paths relative
to it; one, also in the shared corpus, is read from ../shared/corpus), the
conn.log Zeek's test suite stores for each (zeek/zeek testing/btest, BSD licence) and the
options Zeek's test ran with, as juno-analyze's (`-C` is `--ignore-checksums`). Each
trace is run through `juno-analyze logs --format zeek` with them; rows are aligned with Zeek's by
protocol and 5-tuple in either orientation (Zeek's baselines have no timestamps and random
uids), repeats of a 5-tuple in order. Per field group the share of Zeek's values reproduced is
printed; a Zeek row Juno has no row for counts as a miss in every group. With --min, exits 1
when conn_state, history, bytes or packets agree on less than PCT percent.

Groups: conn_state; history; bytes = orig_bytes, resp_bytes; packets = orig_pkts, resp_pkts,
orig_ip_bytes, resp_ip_bytes; also reported (not in --min): missed_bytes, duration, service.
"""
import argparse
import os
import subprocess
import sys
import tempfile

GROUPS = {
    "conn_state": ["conn_state"],
    "history": ["history"],
    "bytes": ["orig_bytes", "resp_bytes"],
    "packets": ["orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes"],
    "missed_bytes": ["missed_bytes"],
    "duration": ["duration"],
}
GATED = ["conn_state", "history", "bytes", "packets"]
SWAP = {"orig_bytes": "resp_bytes", "resp_bytes": "orig_bytes", "orig_pkts": "resp_pkts",
        "resp_pkts": "orig_pkts", "orig_ip_bytes": "resp_ip_bytes",
        "resp_ip_bytes": "orig_ip_bytes"}


def read_log(path):
    fields, rows = None, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#fields\t"):
                fields = line.split("\t")[1:]
            elif line and not line.startswith("#"):
                if fields is None:  # zeek-cut -m: the first plain line is the header
                    fields = line.split("\t")
                    continue
                rows.append(dict(zip(fields, line.split("\t"))))
    return rows


def key(r, proto=True):
    return (r.get("proto") if proto else None, r["id.orig_h"], r["id.orig_p"], r["id.resp_h"],
            r["id.resp_p"])


def rkey(r, proto=True):
    return (r.get("proto") if proto else None, r["id.resp_h"], r["id.resp_p"], r["id.orig_h"],
            r["id.orig_p"])


def same(field, want, got):
    if field == "duration" and want not in ("-", "") and got not in ("-", ""):
        return abs(float(want) - float(got)) <= 1.5e-6
    return want == got


def score_case(expected, produced):
    """Per field: (matched, total); and the differences."""
    got = {f: [0, 0] for g in GROUPS.values() for f in g}
    diffs = []
    used = [False] * len(produced)
    for e in expected:
        pick, flipped = None, False
        wp = "proto" in e
        for i, p in enumerate(produced):
            if used[i]:
                continue
            if key(p, wp) == key(e, wp):
                pick = i
                break
            if rkey(p, wp) == key(e, wp) and pick is None:
                pick, flipped = i, True
        p = None
        if pick is not None:
            used[pick] = True
            p = produced[pick]
        for g in GROUPS.values():
            for f in g:
                if f not in e:  # a zeek-cut baseline without this column
                    continue
                got[f][1] += 1
                if p is None:
                    continue
                v = p.get(SWAP.get(f, f) if flipped else f, "?")
                if same(f, e.get(f), v):
                    got[f][0] += 1
                else:
                    diffs.append((key(e), f, e.get(f), v))
        if p is None:
            diffs.append((key(e), "row", "present", "missing"))
    return got, diffs, sum(used), len(produced)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--analyzer", default=os.path.join(root, "target/release/juno-analyze"))
    ap.add_argument("--corpus", default=os.path.join(root, "fixtures/zeek-conn"))
    ap.add_argument("--min", type=float)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    total = {f: [0, 0] for g in GROUPS.values() for f in g}
    rows = [0, 0, 0]
    with open(os.path.join(a.corpus, "manifest.tsv"), encoding="utf-8") as m:
        cases = [l.rstrip("\n").split("\t") for l in m if l.strip() and not l.startswith("#")]
    for trace, baseline, *rest in cases:
        # Zeek's test options, as juno-analyze's (its -C is --ignore-checksums).
        options = rest[2].split() if len(rest) > 2 else []
        expected = read_log(os.path.join(a.corpus, baseline))
        with tempfile.TemporaryDirectory() as out:
            run = subprocess.run([a.analyzer, "--progress", "never", "-q", "logs",
                                  os.path.join(a.corpus, trace), "--format", "zeek",
                                  "--out-dir", out, *options], capture_output=True, text=True)
            if run.returncode != 0:
                print(f"{trace}: juno-analyze failed: {run.stderr.strip()}")
                return 1
            conn = os.path.join(out, "conn.log")
            produced = read_log(conn) if os.path.exists(conn) else []
        got, diffs, used, nprod = score_case(expected, produced)
        for f, (g, n) in got.items():
            total[f][0] += g
            total[f][1] += n
        rows[0] += used
        rows[1] += len(expected)
        rows[2] += nprod
        agree = sum(g for g, _ in got.values()) / max(sum(n for _, n in got.values()), 1)
        print(f"{trace:45s} rows {used}/{len(expected)} (produced {nprod})  fields {100 * agree:5.1f}%")
        if a.verbose:
            for d in diffs:
                print("   ", d)
    print(f"rows matched {rows[0]}/{rows[1]} (produced {rows[2]})")
    failed = False
    for g, fs in GROUPS.items():
        m = sum(total[f][0] for f in fs)
        n = sum(total[f][1] for f in fs)
        pct = 100.0 * m / max(n, 1)
        print(f"{g:13s} {pct:6.1f}%  ({m}/{n})")
        if a.min is not None and g in GATED and pct < a.min:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
