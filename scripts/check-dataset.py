#!/usr/bin/env python3
"""Reads a partitioned `juno-analyze export --partition-by …` dataset the way its users do and
prints what they see, as one JSON object, for analyzer/tests/export_dataset.rs to compare with
`juno-analyze logs` and `graph`:

- `queries`: every DuckDB query of docs/export.md (each ```sql block whose first line is
  `-- <name>: …`), run with DIR replaced by the dataset's path, as lists of rows;
- `duckdb_rows`, `polars_rows`: rows per table through DuckDB's
  `read_parquet('DIR/<table>/**/*.parquet', hive_partitioning = true)` and polars'
  `scan_parquet(…, hive_partitioning=True)`;
- `polars_rows_by_node`: exchanges per `node` partition (polars);
- `schemas`: the distinct Parquet schemas among each table's files (pyarrow), as strings;
- `hive_columns`: the partition columns and types polars adds to `exchanges`.

    scripts/check-dataset.py DATASET [TABLE...]

Needs duckdb, polars and pyarrow (scripts/setup.sh installs them in its virtualenv).
"""

import json
import re
import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent


def documented_queries():
    """{name: sql} from the ```sql blocks of docs/export.md."""
    text = (ROOT / "docs/export.md").read_text()
    out = {}
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        m = re.match(r"-- ([a-z_0-9]+):", block)
        if m:
            out[m.group(1)] = block
    return out


def plain(v):
    """A DuckDB value as JSON."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def main():
    ds = Path(sys.argv[1]).resolve()
    tables = sys.argv[2:] or ["exchanges", "connections", "edges", "capture"]
    con = duckdb.connect()
    out = {"queries": {}, "duckdb_rows": {}, "polars_rows": {}, "schemas": {}}
    for name, sql in documented_queries().items():
        cur = con.execute(sql.replace("DIR", str(ds)))
        cols = [d[0] for d in cur.description]
        out["queries"][name] = [dict(zip(cols, map(plain, r))) for r in cur.fetchall()]
    for t in tables:
        files = sorted((ds / t).glob("**/*.parquet"))
        if not files:
            continue
        glob = f"{ds}/{t}/**/*.parquet"
        out["duckdb_rows"][t] = con.execute(
            f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)"
        ).fetchone()[0]
        lf = pl.scan_parquet(glob, hive_partitioning=True)
        out["polars_rows"][t] = lf.select(pl.len()).collect().item()
        out["schemas"][t] = sorted({str(pq.read_schema(f)) for f in files})
        if t == "exchanges":
            by = lf.group_by("node").agg(pl.len()).collect()
            out["polars_rows_by_node"] = {r["node"]: r["len"] for r in by.iter_rows(named=True)}
            schema = lf.collect_schema()
            out["hive_columns"] = {k: str(schema[k]) for k in ("node", "hour") if k in schema}
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
