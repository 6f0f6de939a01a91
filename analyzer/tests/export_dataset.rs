//! `juno-analyze export --partition-by`: the Hive-style partitioned Parquet dataset
//! (docs/export.md, "Partitioned datasets"), on the bundled fixtures.
//!
//! Read the way its users read it: DuckDB and polars from PyPI, in the virtualenv
//! scripts/setup.sh makes, through scripts/check-dataset.py, which also runs every DuckDB
//! query docs/export.md shows. Checked against `juno-analyze logs` (row counts) and
//! `juno-analyze graph` (edges and counts). The interruption test kills the export with
//! SIGKILL while it writes its files (slowed down by the documented test hook
//! `JUNO_EXPORT_PAUSE_AFTER_FILE_MS`).
#![cfg(feature = "export")]
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Exports `inputs` as one more batch of the dataset `ds`; returns the batch id.
fn export_batch(ds: &Path, inputs: &[PathBuf], extra: &[&str]) -> String {
    let before = batches(ds);
    let mut args: Vec<&OsStr> = vec![OsStr::new("export")];
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    args.extend([
        OsStr::new("--partition-by"),
        OsStr::new("node,hour"),
        OsStr::new("--out-dir"),
        ds.as_os_str(),
    ]);
    args.extend(extra.iter().map(OsStr::new));
    analyze_ok(args);
    let new: Vec<String> = batches(ds).difference(&before).cloned().collect();
    assert_eq!(new.len(), 1, "one new manifest: {new:?}");
    new.into_iter().next().unwrap()
}

/// Batch ids with a manifest.
fn batches(ds: &Path) -> BTreeSet<String> {
    let Ok(rd) = std::fs::read_dir(ds.join("_batches")) else {
        return BTreeSet::new();
    };
    rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| {
            (!n.starts_with('.'))
                .then(|| n.strip_suffix(".json").map(String::from))
                .flatten()
        })
        .collect()
}

fn manifest(ds: &Path, id: &str) -> Value {
    serde_json::from_slice(&std::fs::read(ds.join("_batches").join(format!("{id}.json"))).unwrap())
        .unwrap()
}

/// Every file under `dir`, recursively, relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Files a `**/*.parquet` glob matches (what DuckDB, polars and Spark read).
fn visible_parquet(ds: &Path) -> Vec<PathBuf> {
    files(ds)
        .into_iter()
        .filter(|p| {
            let n = name(p);
            n.ends_with(".parquet") && !n.starts_with('.') && !n.starts_with('_')
        })
        .collect()
}

fn jsonl_lines(inputs: &[PathBuf]) -> Vec<Value> {
    let mut args: Vec<&OsStr> = vec![OsStr::new("logs")];
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    jsonl(&analyze_ok(args))
}

/// (client, server, protocol) → [requests, errors, unanswered, connections, bytes to server,
/// bytes to client], nodes as `kind|namespace|name`.
type Edges = BTreeMap<(String, String, String), [u64; 6]>;

fn graph_edges(inputs: &[PathBuf]) -> Edges {
    let mut args: Vec<&OsStr> = vec![OsStr::new("graph")];
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    args.extend([OsStr::new("--format"), OsStr::new("json")]);
    let g: Value = serde_json::from_str(&analyze_ok(args)).unwrap();
    let node = |i: &Value| {
        let n = &g["nodes"][i.as_u64().unwrap() as usize];
        format!(
            "{}|{}|{}",
            n["kind"].as_str().unwrap(),
            n["namespace"].as_str().unwrap_or(""),
            n["name"].as_str().unwrap()
        )
    };
    g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = |k: &str| e[k].as_u64().unwrap();
            (
                (
                    node(&e["from"]),
                    node(&e["to"]),
                    e["protocol"].as_str().unwrap().to_string(),
                ),
                [
                    n("requests"),
                    n("errors"),
                    n("unanswered"),
                    n("connections"),
                    n("bytes_to_server"),
                    n("bytes_to_client"),
                ],
            )
        })
        .collect()
}

fn sql_edges(rows: &Value) -> Edges {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let node = |side: &str| {
                format!(
                    "{}|{}|{}",
                    r[format!("{side}_kind")].as_str().unwrap(),
                    r[format!("{side}_namespace")].as_str().unwrap_or(""),
                    r[side].as_str().unwrap()
                )
            };
            let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
            (
                (
                    node("client"),
                    node("server"),
                    r["protocol"].as_str().unwrap().to_string(),
                ),
                [
                    n("requests"),
                    n("errors"),
                    n("unanswered"),
                    n("connections"),
                    n("bytes_to_server"),
                    n("bytes_to_client"),
                ],
            )
        })
        .collect()
}

#[test]
fn two_nodes_as_partitions_read_by_duckdb_and_polars_match_graph_and_logs() {
    let tmp = tmp();
    let ds = tmp.path().join("dataset");
    let (a, b) = (fixture("dns-dig.pcap"), fixture("redis-cli.pcap"));
    let id_a = export_batch(&ds, std::slice::from_ref(&a), &["--node", "node-a"]);
    let id_b = export_batch(&ds, std::slice::from_ref(&b), &["--node", "node-b"]);
    assert!(
        id_a[..16] <= id_b[..16],
        "batch ids begin with their time: {id_a} {id_b}"
    );

    // The layout: <table>/node=…/hour=…/part-<batch>-<n>.parquet, the summaries per batch.
    let (la, lb) = (
        jsonl_lines(std::slice::from_ref(&a)),
        jsonl_lines(std::slice::from_ref(&b)),
    );
    for (id, node, lines) in [(&id_a, "node-a", &la), (&id_b, "node-b", &lb)] {
        let hours: BTreeSet<String> = lines
            .iter()
            .map(|l| l["ts"].as_str().unwrap()[..13].to_string())
            .collect();
        let m = manifest(&ds, id);
        assert_eq!(m["batch"], id.as_str());
        assert_eq!(m["tables"]["exchanges"]["rows"], lines.len() as u64);
        let mut seen_hours = BTreeSet::new();
        for f in m["tables"]["exchanges"]["files"].as_array().unwrap() {
            let p = Path::new(f["path"].as_str().unwrap());
            let parts: Vec<String> = p.iter().map(|c| c.to_string_lossy().into()).collect();
            assert_eq!(parts.len(), 4, "{}", p.display());
            assert_eq!(parts[0], "exchanges");
            assert_eq!(parts[1], format!("node={node}"));
            seen_hours.insert(parts[2].strip_prefix("hour=").unwrap().to_string());
            assert!(
                parts[3].starts_with(&format!("part-{id}-")) && parts[3].ends_with(".parquet"),
                "{}",
                p.display()
            );
            let bytes = std::fs::read(ds.join(p)).unwrap();
            assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
            assert_eq!(f["bytes"], bytes.len() as u64);
        }
        assert_eq!(seen_hours, hours, "an hour partition per hour with rows");
        for t in ["edges", "capture"] {
            let f = &m["tables"][t]["files"][0]["path"];
            assert_eq!(
                f.as_str().unwrap(),
                format!("{t}/batch={id}/part-{id}-0.parquet")
            );
        }
    }
    // Every file a glob sees is in a manifest, and nothing temporary is left.
    let listed: BTreeSet<PathBuf> = [&id_a, &id_b]
        .iter()
        .flat_map(|id| {
            let m = manifest(&ds, id);
            ["exchanges", "connections", "edges", "capture"]
                .iter()
                .flat_map(|t| {
                    m["tables"][t]["files"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| PathBuf::from(f["path"].as_str().unwrap()))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        visible_parquet(&ds).into_iter().collect::<BTreeSet<_>>(),
        listed
    );
    assert!(
        files(&ds).iter().all(|p| !name(p).ends_with(".tmp")),
        "{:?}",
        files(&ds)
    );
    assert_eq!(
        std::fs::read_to_string(ds.join("_SUCCESS")).unwrap().trim(),
        id_b
    );

    let seen = read_dataset(&ds);
    // polars and DuckDB: as many exchange rows as JSON lines, per node too.
    let rows = (la.len() + lb.len()) as u64;
    assert_eq!(seen["polars_rows"]["exchanges"], rows);
    assert_eq!(seen["duckdb_rows"]["exchanges"], rows);
    assert_eq!(seen["polars_rows_by_node"]["node-a"], la.len() as u64);
    assert_eq!(seen["polars_rows_by_node"]["node-b"], lb.len() as u64);
    assert_eq!(seen["hive_columns"]["node"], "String");
    for t in ["exchanges", "connections", "edges", "capture"] {
        assert_eq!(seen["polars_rows"][t], seen["duckdb_rows"][t], "{t}");
        let manifests: u64 = [&id_a, &id_b]
            .iter()
            .map(|id| manifest(&ds, id)["tables"][t]["rows"].as_u64().unwrap())
            .sum();
        assert_eq!(seen["polars_rows"][t], manifests, "{t}");
        assert_eq!(
            seen["schemas"][t].as_array().unwrap().len(),
            1,
            "{t}: one schema in every file"
        );
    }

    // DuckDB's service graph (docs/export.md) = `juno-analyze graph` on both inputs at once.
    let want = graph_edges(&[a.clone(), b.clone()]);
    let got = sql_edges(&seen["queries"]["service_graph"]);
    assert!(want.values().any(|v| v[1] > 0), "some edge has errors");
    assert_eq!(got, want);
    // The other documented queries run and agree with the graph where they overlap.
    let failing: u64 = seen["queries"]["top_failing_endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["failures"].as_u64().unwrap())
        .sum();
    let errors: u64 = want.values().map(|v| v[1]).sum();
    assert!(failing > 0 && failing <= errors, "{failing} of {errors}");
    let hourly: u64 = seen["queries"]["p99_per_edge_per_hour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(hourly, rows);
    // Through the manifests: exactly the committed files, the same rows.
    assert_eq!(
        seen["queries"]["committed_exchanges"][0]["rows"].as_u64(),
        Some(rows)
    );
}

#[test]
fn files_stay_under_max_file_rows_and_add_up_to_the_logs() {
    let tmp = tmp();
    let ds = tmp.path().join("dataset");
    let input = fixture("pipeline-1000.pcap.zst");
    let id = export_batch(
        &ds,
        std::slice::from_ref(&input),
        &["--max-file-rows", "128"],
    );
    let lines = jsonl_lines(&[input]);
    let m = manifest(&ds, &id);
    let ex = &m["tables"]["exchanges"];
    let mut per_dir: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for f in ex["files"].as_array().unwrap() {
        let p = Path::new(f["path"].as_str().unwrap());
        let rows = f["rows"].as_u64().unwrap();
        assert!((1..=128).contains(&rows), "{}: {rows} rows", p.display());
        // Rows without a node say so (a pcap records none and no --node was given).
        assert!(p.starts_with("exchanges/node=unknown"), "{}", p.display());
        per_dir
            .entry(p.parent().unwrap().display().to_string())
            .or_default()
            .push(rows);
    }
    assert_eq!(ex["rows"], lines.len() as u64);
    assert!(lines.len() > 128 * 4, "{} exchanges", lines.len());
    // Full files, then at most one partial file per partition.
    for (d, rows) in &per_dir {
        let total: u64 = rows.iter().sum();
        assert_eq!(rows.len() as u64, total.div_ceil(128), "{d}: {rows:?}");
    }
    assert_eq!(ex["files_closed_early"], 0);
    let seen = read_dataset(&ds);
    assert_eq!(seen["polars_rows"]["exchanges"], lines.len() as u64);
    assert_eq!(seen["polars_rows_by_node"]["unknown"], lines.len() as u64);
}

#[test]
fn sigkill_mid_write_leaves_no_file_a_reader_takes_and_no_manifest() {
    let tmp = tmp();
    let ds = tmp.path().join("dataset");
    let input = fixture("pipeline-1000.pcap.zst");
    let mut child = Command::new(env!("CARGO_BIN_EXE_juno-analyze"))
        .args(["--progress", "never", "-q", "export"])
        .arg(&input)
        .args(["--partition-by", "node,hour", "--max-file-rows", "16"])
        .arg("--out-dir")
        .arg(&ds)
        .env("JUNO_EXPORT_PAUSE_AFTER_FILE_MS", "300")
        .spawn()
        .unwrap();
    // Wait until two data files exist (the first is finished: it has been fsynced and the
    // export sleeps after it), then kill.
    let start = Instant::now();
    let tmp_files = |ds: &Path| -> Vec<PathBuf> {
        files(ds)
            .into_iter()
            .filter(|p| {
                p.starts_with("_tmp")
                    && name(p).starts_with('.')
                    && name(p).ends_with(".parquet.tmp")
            })
            .collect()
    };
    while tmp_files(&ds).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the export wrote no files"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the export ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // The batch was cut in the middle: its files are there, all under hidden temporary
    // names in `_tmp/<batch>/`, outside the tables' directories: no glob of *.parquet and
    // no scan of a table's directory reads them.
    assert!(!tmp_files(&ds).is_empty());
    assert_eq!(visible_parquet(&ds), Vec::<PathBuf>::new());
    assert!(batches(&ds).is_empty(), "no manifest");
    assert!(!ds.join("_SUCCESS").exists());
    for p in files(&ds) {
        let n = name(&p);
        assert!(n.starts_with('.') || n.starts_with('_'), "{}", p.display());
    }
    // DuckDB's and polars' readers find nothing to read.
    let out = Command::new(python())
        .arg("-c")
        .arg(
            "import sys, duckdb, polars as pl\n\
             d = sys.argv[1]\n\
             print(duckdb.connect().execute(f\"SELECT count(*) FROM glob('{d}/**/*.parquet')\").fetchone()[0])\n\
             try:\n    n = pl.scan_parquet(d + '/exchanges/', hive_partitioning=True).select(pl.len()).collect().item()\n\
             except Exception as e:\n    n = 'error: ' + type(e).__name__\n\
             print(n)\n",
        )
        .arg(&ds)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.lines();
    assert_eq!(
        it.next(),
        Some("0"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let polars = it.next().unwrap();
    assert!(
        polars == "0" || polars.starts_with("error"),
        "polars read {polars}"
    );
    assert!(!ds.join("exchanges").exists(), "no partition directory yet");

    // The next export into the same directory commits and is read alone.
    let id = export_batch(&ds, std::slice::from_ref(&input), &[]);
    let lines = jsonl_lines(&[input]);
    let seen = read_dataset(&ds);
    assert_eq!(seen["polars_rows"]["exchanges"], lines.len() as u64);
    assert_eq!(seen["duckdb_rows"]["exchanges"], lines.len() as u64);
    assert!(visible_parquet(&ds).iter().all(|p| name(p).contains(&id)));
}

#[test]
fn a_second_batch_appends_and_leaves_the_first_unchanged() {
    let tmp = tmp();
    let ds = tmp.path().join("dataset");
    let first = export_batch(&ds, &[fixture("http-nginx-curl.pcap")], &["--node", "n1"]);
    // The first batch's files, byte for byte (a stronger check than a hash), and their
    // modification times.
    let snapshot = |ds: &Path| -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
        files(ds)
            .into_iter()
            .filter(|p| !p.starts_with("_SUCCESS"))
            .map(|p| {
                let abs = ds.join(&p);
                let mtime = std::fs::metadata(&abs).unwrap().modified().unwrap();
                (p, (std::fs::read(&abs).unwrap(), mtime))
            })
            .collect()
    };
    let before = snapshot(&ds);
    assert!(before.len() >= 5, "{:?}", before.keys());
    // The same partitions again (same node, same hour): new files beside the old ones.
    let second = export_batch(&ds, &[fixture("http-nginx-curl.pcap")], &["--node", "n1"]);
    assert_ne!(first, second);
    let after = snapshot(&ds);
    for (p, v) in &before {
        assert_eq!(after.get(p), Some(v), "{} changed", p.display());
    }
    let new: Vec<&PathBuf> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert!(!new.is_empty());
    for p in &new {
        assert!(name(p).contains(&second), "{}", p.display());
    }
    assert_eq!(
        batches(&ds),
        BTreeSet::from([first.clone(), second.clone()])
    );
    let rows = jsonl_lines(&[fixture("http-nginx-curl.pcap")]).len() as u64;
    let seen = read_dataset(&ds);
    assert_eq!(seen["polars_rows"]["exchanges"], 2 * rows);
    assert_eq!(seen["queries"]["committed_exchanges"][0]["rows"], 2 * rows);
}

#[test]
fn node_comes_from_the_archive_before_the_fallback() {
    let tmp = tmp();
    let ds = tmp.path().join("dataset");
    let input = fixture("recorded-nginx-curl.pcapng.zst");
    let id = export_batch(&ds, std::slice::from_ref(&input), &["--node", "fallback"]);
    let m = manifest(&ds, &id);
    let nodes: BTreeSet<&str> = m["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(nodes.len(), 1, "the archive names its node: {nodes:?}");
    let node = *nodes.iter().next().unwrap();
    let dirs: BTreeSet<String> = m["tables"]["exchanges"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .split('/')
                .nth(1)
                .unwrap()
                .to_string()
        })
        .collect();
    // Packets carry the archive's node; socket events the node of the traced process's pod,
    // which this archive's metadata does not name: those fall back.
    assert!(dirs.contains(&format!("node={node}")), "{dirs:?}");
    assert!(
        dirs.iter()
            .all(|d| d == &format!("node={node}") || d == "node=fallback"),
        "{dirs:?}"
    );
}

#[test]
fn bad_partition_options_are_clear_errors() {
    let tmp = tmp();
    let ds = tmp.path().join("dataset");
    let dns = fixture("dns-dig.pcap");
    for (extra, want) in [
        (
            &["--partition-by", "node,day"][..],
            "unknown partition key \"day\" (accepted: node, hour)",
        ),
        (&["--partition-by", "node,node"][..], "given twice"),
        (
            &["--partition-by", "node", "--format", "csv"][..],
            "Parquet datasets only",
        ),
        (
            &["--partition-by", "node", "--max-file-rows", "0"][..],
            "at least 1",
        ),
        (&["--node", "x"][..], "--partition-by"),
    ] {
        let mut args: Vec<&OsStr> = vec![OsStr::new("export"), dns.as_os_str()];
        args.extend([OsStr::new("--out-dir"), ds.as_os_str()]);
        args.extend(extra.iter().map(OsStr::new));
        let out = analyze(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?}");
        assert!(
            err.contains(want) && !err.contains("panicked"),
            "{extra:?}: {err}"
        );
    }
    assert!(visible_parquet(&ds).is_empty());
}
