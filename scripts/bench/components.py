#!/usr/bin/env python3
"""Where one exchange's instructions go, by part of the analyzer.

    scripts/bench/components.py PACKETS CAPTURE... [--format zeek|jsonl] [--bin BINARY]
                                [--source FILE]...

For each capture: its first PACKETS packets (cut with tcpdump) are analysed by one worker
(`logs --threads 1`) under cachegrind, which counts the instructions each function executed
(deterministic for a binary and an input, unlike times on a shared VM); the functions are
grouped by the module their code belongs to (a function inlined into another counts for the
one it was inlined into: cachegrind names the function that ran; a generic function, by the
analyzer's source file it came from), and each group's count is
divided by the exchanges written (the rows of the protocols' logs, or the JSON lines).
`--source model/fields.rs` adds a column: the instructions of that source file's lines,
wherever they ran (inlined into other functions included): what one piece of code costs
however the compiler spread it.
Needs valgrind (cachegrind, cg_annotate) and tcpdump.
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

# (pattern on the function's path, group), first match wins. Output first: a protocol's Zeek
# row function lives in its protocol module.
GROUPS = [
    (r"::zeek::|zeek_row|sink::zeek", "output: Zeek rows"),
    (r"sink::json", "output: JSON lines"),
    (r"sink::", "output: other"),
    (r"proto::(\w+)", "parser: {}"),
    (r"conn::reassembly", "TCP reassembly"),
    (r"conn::connlog", "conn.log tracking"),
    (r"conn::", "connections: tables, sessions, order"),
    (r"l7::", "exchanges: emitter, matching"),
    (r"model::", "exchanges: fields, values"),
    (r"decode", "decoding link/IP/TCP"),
    (r"input::", "reading the capture"),
    (r"pipeline", "pipeline: batches"),
    (r"rayon|crossbeam", "thread pool"),
    (r"\b_?int_malloc|\bmalloc\b|\b_?int_free|\bfree\b|realloc|unlink_chunk|malloc_consolidate|cfree", "glibc malloc/free"),
    (r"memcpy|memmove", "glibc memcpy"),
    (r"memset", "glibc memset"),
    (r"memchr", "memchr"),
    (r"from_utf8|utf8", "UTF-8 checks"),
]


def group(function):
    for pattern, name in GROUPS:
        m = re.search(pattern, function)
        if m:
            return name.format(*m.groups()) if m.groups() else name
    return "other"


def cut(capture, packets, work):
    path = os.path.join(work, os.path.basename(capture) + ".cut.pcap")
    subprocess.run(
        ["tcpdump", "-q", "-r", capture, "-c", str(packets), "-w", path],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return path


def exchanges(out, fmt):
    if fmt == "jsonl":
        with open(os.path.join(out, "exchanges.jsonl"), "rb") as f:
            return sum(1 for _ in f)
    rows = 0
    for name in os.listdir(out):
        if name.endswith(".log") and name not in ("conn.log", "weird.log"):
            with open(os.path.join(out, name), "rb") as f:
                rows += sum(1 for line in f if not line.startswith(b"#"))
    return rows


def source_lines(data, sources):
    """Instructions executed on lines of each of `sources` (paths ending so), from
    cachegrind's own file: its `fl=` lines name the source file of the counts that follow,
    whichever function they were inlined into."""
    counts = collections.Counter()
    current = None
    with open(data) as f:
        for line in f:
            if line.startswith("fl="):
                name = line[3:].strip()
                current = next((s for s in sources if name.endswith(s)), None)
            elif current and line[:1].isdigit():
                fields = line.split()
                if len(fields) >= 2:
                    counts[current] += int(fields[1])
    return counts


def profile(binary, capture, fmt, work, sources=()):
    out = os.path.join(work, "out")
    data = os.path.join(work, "cg.out")
    subprocess.run(["rm", "-rf", out], check=True)
    subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={data}",
         binary, "logs", capture, "--format", fmt, "--out-dir", out, "--threads", "1", "-q"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    text = subprocess.run(
        ["cg_annotate", "--show=Ir", "--threshold=0", "--auto=no", data],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total = 0
    groups = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)$", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        where = m.group(2)
        if "PROGRAM TOTALS" in where:
            total = n
            continue
        file, _, function = where.partition(":")
        g = group(function)
        if g == "other" and "analyzer/src/" in file:
            # A generic function (a closure, an iterator adapter) named after the library
            # code it runs: the analyzer's file it was instantiated from says whose it is.
            g = group(file.split("analyzer/src/", 1)[1].removesuffix(".rs").replace("/", "::") + "::")
        groups[g] += n
    return total, groups, exchanges(out, fmt), source_lines(data, sources)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("packets", type=int)
    p.add_argument("captures", nargs="+")
    p.add_argument("--format", default="zeek", choices=["zeek", "jsonl"])
    p.add_argument("--bin", default="target/release/juno-analyze")
    p.add_argument("--top", type=int, default=8, help="groups shown per capture")
    p.add_argument("--source", action="append", default=[],
                   help="also count the lines of this source file (e.g. model/fields.rs)")
    a = p.parse_args()
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"components.py: {a.bin} not built (cargo build --release -p juno-analyze)")
    for tool in ("valgrind", "cg_annotate", "tcpdump"):
        if not shutil.which(tool):
            sys.exit(f"components.py: {tool} not found")
    with tempfile.TemporaryDirectory() as work:
        extra = "".join(f" {src}'s lines, per exchange (share) |" for src in a.source)
        print(f"| capture | exchanges | instructions per exchange | the {a.top} largest parts, instructions per exchange (share) |{extra}")
        print("|---|---|---|---|" + "---|" * len(a.source))
        for c in a.captures:
            try:
                total, groups, n, lines = profile(
                    a.bin, cut(c, a.packets, work), a.format, work, a.source
                )
            except subprocess.CalledProcessError as e:
                sys.exit(f"components.py: {e.cmd[0]} failed (status {e.returncode}) on {c}")
            if n == 0 or total == 0:
                print(f"| {os.path.basename(c)} | {n} | - | no exchanges |")
                continue
            parts = ", ".join(
                f"{name} {v / n:,.0f} ({100 * v / total:.0f}%)"
                for name, v in groups.most_common(a.top)
            )
            extra = "".join(
                f" {lines[src] / n:,.0f} ({100 * lines[src] / total:.1f}%) |" for src in a.source
            )
            print(f"| {os.path.basename(c)} | {n:,} | {total / n:,.0f} | {parts} |{extra}")


if __name__ == "__main__":
    main()
