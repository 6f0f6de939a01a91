#!/usr/bin/env python3
"""Checks `juno-analyze export` from Python, as a notebook user loads it.

For every fixture and format (Parquet, Arrow IPC, CSV): exports, loads each table with polars
and with pyarrow, and checks
that the columns and (Parquet, IPC) their types are exactly those docs/export.md documents, and that
`exchanges` has as many rows as `juno-analyze logs` writes JSON lines, with the same
protocols in the same order.

    scripts/check-export.py [JUNO_ANALYZE] [FIXTURE...]

Needs polars and pyarrow (scripts/setup.sh installs them in its virtualenv).
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent

# docs/export.md's type names → polars and pyarrow types.
POLARS = {
    "String": pl.String,
    "UInt32": pl.UInt32,
    "UInt64": pl.UInt64,
    "Float64": pl.Float64,
    "Boolean": pl.Boolean,
    "Datetime(ns, UTC)": pl.Datetime("ns", "UTC"),
    "Duration(ns)": pl.Duration("ns"),
}
ARROW = {
    "String": (pa.string(), pa.large_string(), pa.string_view()),
    "UInt32": (pa.uint32(),),
    "UInt64": (pa.uint64(),),
    "Float64": (pa.float64(),),
    "Boolean": (pa.bool_(),),
    "Datetime(ns, UTC)": (pa.timestamp("ns", tz="UTC"),),
    "Duration(ns)": (pa.duration("ns"),),
}


def documented_schema():
    """{table: [(column, type)]} from the tables in docs/export.md."""
    tables, current = {}, None
    for line in (ROOT / "docs/export.md").read_text().splitlines():
        m = re.match(r"^## (\w+)$", line)
        if m:
            current = m.group(1)
            tables[current] = []
            continue
        m = re.match(r"^\| ([a-z_0-9]+) \| ([^|]+) \|", line)
        if current and m and m.group(1) != "column":
            tables[current].append((m.group(1), m.group(2).strip()))
    return tables


def read(path, fmt):
    """The table as polars and as pyarrow read it."""
    if fmt == "parquet":
        return pl.read_parquet(path), pq.read_table(path)
    if fmt == "ipc":
        with pa.memory_map(str(path)) as f:
            return pl.read_ipc(path), pa.ipc.open_file(f).read_all()
    return pl.read_csv(path, infer_schema_length=None), pacsv.read_csv(path)


def check(bin_, fx, fmt, ext, schema):
    """Exports FX as FMT and checks every table; returns the number of problems."""
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "export"
        subprocess.run([bin_, "--progress", "never", "-q", "export", fx, "--format", fmt, "--out-dir", str(out)], check=True)
        lines = subprocess.run(
            [bin_, "--progress", "never", "-q", "logs", fx], check=True, capture_output=True, text=True
        ).stdout.splitlines()
        jsonl = [json.loads(l) for l in lines]
        counts = {}
        for table, cols in schema.items():
            df, at = read(out / f"{table}.{ext}", fmt)
            want = [c for c, _ in cols]
            problems = []
            if df.columns != want:
                problems.append(f"polars columns {df.columns} != documented {want}")
            if at.column_names != want:
                problems.append(f"pyarrow columns {at.column_names} != documented {want}")
            # CSV has no types of its own: what a reader infers is not the export's business.
            for c, t in cols if fmt != "csv" else []:
                if c in df.columns and df.schema[c] != POLARS[t]:
                    problems.append(f"{c}: polars type {df.schema[c]}, documented {t}")
                if c in at.column_names and at.schema.field(c).type not in ARROW[t]:
                    problems.append(f"{c}: arrow type {at.schema.field(c).type}, documented {t}")
            if df.height != at.num_rows:
                problems.append(f"polars {df.height} rows, pyarrow {at.num_rows}")
            if table == "exchanges":
                latency = df["latency"].dt.total_nanoseconds() if fmt != "csv" else df["latency"]
                if df.height != len(jsonl):
                    problems.append(f"{df.height} rows, {len(jsonl)} JSON lines")
                elif df["protocol"].to_list() != [j["protocol"] for j in jsonl]:
                    problems.append("protocols differ from the JSON lines, row by row")
                elif df["uid"].to_list() != [j["uid"] for j in jsonl]:
                    problems.append("connection uids differ from the JSON lines, row by row")
                elif latency.to_list() != [j["latency_ns"] for j in jsonl]:
                    problems.append("latencies differ from the JSON lines, row by row")
                if df.height == 0:
                    problems.append("no exchanges")
            counts[table] = df.height
            for p in problems:
                print(f"FAIL {Path(fx).name} {fmt} {table}: {p}")
            failures += len(problems)
        print(f"{Path(fx).name} {fmt}: " + ", ".join(f"{t} {n}" for t, n in counts.items()) + f"; {len(jsonl)} JSON lines")
    return failures


def main():
    args = sys.argv[1:]
    bin_ = args[0] if args else str(ROOT / "target/release/juno-analyze")
    fixtures = args[1:] or sorted(
        str(p) for p in (ROOT / "fixtures").iterdir() if re.search(r"\.pcap(ng)?(\.zst)?$", p.name)
    )
    schema = documented_schema()
    assert set(schema) == {"exchanges", "connections", "edges", "capture"}, schema.keys()
    failures = 0
    for fx in fixtures:
        for fmt, ext in (("parquet", "parquet"), ("ipc", "arrow"), ("csv", "csv")):
            failures += check(bin_, fx, fmt, ext, schema)
    if failures:
        print(f"check-export: {failures} problems", file=sys.stderr)
        sys.exit(1)
    print(f"check-export: {len(fixtures)} fixtures agree with docs/export.md and the JSON lines")


if __name__ == "__main__":
    main()
