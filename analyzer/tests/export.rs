//! `juno-analyze export` on every bundled fixture in every format, checked without polars (so
//! this test does not link it): the files are what their format says (Parquet and Arrow IPC
//! magic at both ends), CSV headers are exactly the columns docs/export.md documents, CSV
//! rows match the JSON lines (count, protocol, connection and latency, row by row) and the
//! edges match `juno-analyze graph`. Types and the Parquet/IPC row counts are checked from
//! Python with polars and pyarrow (scripts/check-export.py, run by scripts/test.sh).
#![cfg(feature = "export")]
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const TABLES: [&str; 4] = ["exchanges", "connections", "edges", "capture"];

/// The columns of each table, from the tables in docs/export.md.
fn documented() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(root().join("docs/export.md")).unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in doc.lines() {
        if let Some(t) = line.strip_prefix("## ") {
            out.push((t.to_string(), Vec::new()));
        } else if let (Some(l), Some((_, cols))) = (line.strip_prefix("| "), out.last_mut()) {
            let name = l.split(" |").next().unwrap();
            if name != "column" && !name.starts_with('-') {
                cols.push(name.to_string());
            }
        }
    }
    out.retain(|(t, _)| TABLES.contains(&t.as_str()));
    assert_eq!(out.len(), 4, "docs/export.md documents the four tables");
    out
}

/// CSV records (RFC 4180: quotes double inside quoted fields, which may hold newlines).
fn csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the CSV ends with a newline"
    );
    rows
}

fn export(input: &Path, format: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format);
    analyze_ok([
        "export".as_ref(),
        input.as_os_str(),
        "--format".as_ref(),
        format.as_ref(),
        "--out-dir".as_ref(),
        out.as_os_str(),
    ]);
    out
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".pcap") || n.ends_with(".pcap.zst") || n.ends_with(".pcapng.zst")
        })
        .collect();
    v.sort();
    assert!(v.len() >= 7, "fixtures: {v:?}");
    v
}

#[test]
fn every_fixture_in_every_format() {
    let docs = documented();
    let tmp = tempfile::tempdir().unwrap();
    for (i, fx) in fixtures().iter().enumerate() {
        let dir = tmp.path().join(i.to_string());
        // Parquet and Arrow IPC files: the format's magic at both ends (a file cut short or
        // never finished lacks the footer).
        for (format, ext, magic) in [
            ("parquet", "parquet", &b"PAR1"[..]),
            ("ipc", "arrow", b"ARROW1"),
        ] {
            let out = export(fx, format, &dir);
            for t in TABLES {
                let b = std::fs::read(out.join(format!("{t}.{ext}"))).unwrap();
                assert!(
                    b.starts_with(magic) && b.ends_with(magic),
                    "{}: {t}.{ext} is not a whole {format} file",
                    fx.display()
                );
            }
        }
        let out = export(fx, "csv", &dir);
        let lines: Vec<Value> = analyze_ok(["logs".as_ref(), fx.as_os_str()])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(!lines.is_empty(), "{}", fx.display());
        let graph: Value = serde_json::from_str(&analyze_ok([
            "graph".as_ref(),
            fx.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
        ]))
        .unwrap();
        for (table, cols) in &docs {
            let rows = csv(&std::fs::read_to_string(out.join(format!("{table}.csv"))).unwrap());
            assert_eq!(&rows[0], cols, "{}: {table}.csv header", fx.display());
            let col = |name: &str| cols.iter().position(|c| c == name).unwrap();
            let body = &rows[1..];
            match table.as_str() {
                "exchanges" => {
                    assert_eq!(
                        body.len(),
                        lines.len(),
                        "{}: rows vs JSON lines",
                        fx.display()
                    );
                    for (r, j) in body.iter().zip(&lines) {
                        assert_eq!(r[col("protocol")], j["protocol"].as_str().unwrap());
                        assert_eq!(r[col("uid")], j["uid"].as_str().unwrap());
                        assert_eq!(r[col("depth")], j["depth"].to_string());
                        let lat = &r[col("latency")];
                        match j["latency_ns"].as_u64() {
                            Some(ns) => assert_eq!(lat, &ns.to_string()),
                            None => assert_eq!(lat, ""),
                        }
                        // The protocol fields: the JSON lines object, as JSON text.
                        let fields: Value = serde_json::from_str(&r[col("fields")]).unwrap();
                        assert_eq!(&fields, &j[j["protocol"].as_str().unwrap()]);
                        assert!(r[col("ts")].starts_with(&j["ts"].as_str().unwrap()[..19]));
                    }
                }
                "edges" => {
                    let edges = graph["edges"].as_array().unwrap();
                    assert_eq!(body.len(), edges.len(), "{}: edges", fx.display());
                    let total: u64 = body
                        .iter()
                        .map(|r| r[col("requests")].parse::<u64>().unwrap())
                        .sum();
                    let want: u64 = edges.iter().map(|e| e["requests"].as_u64().unwrap()).sum();
                    assert_eq!(total, want, "{}: requests over all edges", fx.display());
                }
                "connections" => {
                    assert!(!body.is_empty(), "{}: connections", fx.display());
                    // Every exchange's connection is a row.
                    let uids: std::collections::HashSet<&str> =
                        body.iter().map(|r| r[col("uid")].as_str()).collect();
                    for j in &lines {
                        assert!(
                            uids.contains(j["uid"].as_str().unwrap()),
                            "{}: {}",
                            fx.display(),
                            j["uid"]
                        );
                    }
                }
                _ => {
                    // capture: one row for the file, one per interface, packets adding up.
                    let files: Vec<_> = body.iter().filter(|r| r[col("kind")] == "file").collect();
                    let ifaces: Vec<_> = body
                        .iter()
                        .filter(|r| r[col("kind")] == "interface")
                        .collect();
                    assert_eq!(files.len(), 1, "{}", fx.display());
                    assert!(!ifaces.is_empty(), "{}", fx.display());
                    let sum = |rs: &[&Vec<String>]| -> u64 {
                        rs.iter()
                            .map(|r| r[col("packets")].parse::<u64>().unwrap())
                            .sum()
                    };
                    assert_eq!(sum(&files), sum(&ifaces), "{}: packets", fx.display());
                }
            }
        }
    }
}

#[test]
fn bad_input_and_bad_output_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture at all, just text").unwrap();
    let out = analyze([
        "export".as_ref(),
        garbage.as_os_str(),
        "--out-dir".as_ref(),
        tmp.path().join("x").as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("juno-analyze: error:") && !err.contains("panicked"),
        "{err}"
    );

    // The output directory is a file.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let out = analyze([
        "export".as_ref(),
        fixture("dns-dig.pcap").as_os_str(),
        "--out-dir".as_ref(),
        file.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot create") && !err.contains("panicked"),
        "{err}"
    );
}
