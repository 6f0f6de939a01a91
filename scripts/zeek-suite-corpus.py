#!/usr/bin/env python3
"""Build a score.py corpus from every baseline in a Zeek checkout's test suite.

Usage: zeek-suite-corpus.py ZEEK_GIT_DIR OUT_DIR

ZEEK_GIT_DIR is a git directory of github.com/zeek/zeek (a bare clone or a checkout's .git);
nothing is downloaded here. For every test baseline that holds one of the logs
../shared/conformance/score.py compares (http, dns, redis, mysql, postgresql: `<proto>.log`,
or a `<proto>.cut` written by zeek-cut), the test script is found in testing/btest, the one
trace its `@TEST-EXEC` lines read is written to OUT_DIR/<proto>/, and the baseline beside it.
OUT_DIR/manifest.json lists the cases in score.py's format, with `zeek_options_changed` set
when the test runs Zeek with options (-C, a redef, -e) that a plain run does not have. Tests
that read several traces or none are listed as skipped.

The corpus stays outside this repository (the traces are Zeek's, BSD licence: COPYING.zeek);
it is the wider check behind docs/zeek.md's "Zeek's whole test suite":

  python3 scripts/zeek-suite-corpus.py /path/to/zeek/.git /tmp/zeek-suite
  python3 ../shared/conformance/score.py --corpus /tmp/zeek-suite
"""
import json
import os
import re
import subprocess
import sys

PROTOS = ["http", "dns", "redis", "mysql", "postgresql"]


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    gitdir, out = sys.argv[1], sys.argv[2]

    def git(*a):
        return subprocess.run(["git", "--git-dir", gitdir, *a], capture_output=True,
                              check=True).stdout

    files = git("ls-tree", "-r", "--name-only", "HEAD", "testing/btest").decode().split("\n")
    present = set(files)
    manifest, skipped = [], []
    for f in files:
        m = re.match(r"testing/btest/Baseline/([^/]+)/(\w+)\.(log|cut)$", f)
        if not m or m.group(2) not in PROTOS:
            continue
        proto, test_name = m.group(2), m.group(1)
        prefix = f"scripts.base.protocols.{proto}."
        name = test_name[len(prefix):] if test_name.startswith(prefix) else test_name
        # The baseline directory is the test's path with dots for slashes, perhaps with a
        # sub-test's name after the file's.
        parts = test_name.split(".")
        candidates = [
            "testing/btest/" + "/".join(parts[:i]) + "/" + ".".join(parts[i:j]) + ext
            for ext in (".zeek", ".test")
            for i in range(1, len(parts))
            for j in range(i + 1, len(parts) + 1)
        ]
        test = next((c for c in candidates if c in present), None)
        if test is None:
            skipped.append((test_name, "no test script found"))
            continue
        src = git("show", "HEAD:" + test).decode(errors="replace")
        execs = [l for l in src.split("\n") if "@TEST-EXEC" in l and "TRACES" in l]
        traces = sorted(set(re.findall(r"\$\{?TRACES\}?/(\S+)", " ".join(execs))))
        if len(traces) != 1:
            skipped.append((test_name, f"reads {len(traces)} traces"))
            continue
        trace = "testing/btest/Traces/" + traces[0]
        if trace not in present:
            skipped.append((test_name, "trace not in the tree"))
            continue
        options = " ".join(execs)
        changed = bool(re.search(r"\s-[A-Za-z]*C|\s-e\s", options)) or "redef" in src
        base = f"{proto}/{name}"
        os.makedirs(os.path.join(out, proto), exist_ok=True)
        ext = os.path.splitext(trace)[1] or ".pcap"
        with open(os.path.join(out, base + ext), "wb") as o:
            o.write(git("show", "HEAD:" + trace))
        with open(os.path.join(out, base + ".expected.log"), "wb") as o:
            o.write(git("show", "HEAD:" + f))
        manifest.append(dict(proto=proto, name=name, trace=base + ext,
                             expected=base + ".expected.log", zeek_trace=traces[0],
                             zeek_baseline=f, zeek_options_changed=changed, zeek_test=test))
    with open(os.path.join(out, "manifest.json"), "w") as o:
        json.dump(manifest, o, indent=1)
    print(f"{len(manifest)} cases in {out}")
    for name, why in skipped:
        print(f"skipped {name}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
