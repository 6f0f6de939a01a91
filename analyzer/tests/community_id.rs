//! Community IDs of every exchange of every fixture, checked against an independent
//! computation (scripts/check-community-id.py: pycommunityid when installed, else the spec's
//! pseudo code in Python), with the default seed and another.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

const FIXTURES: &[&str] = &[
    "dns-dig.pcap",
    "dns-frag.pcap",
    "http-nginx-curl.pcap",
    "http2-grpc.pcap",
    "mysql-mariadb.pcap.zst",
    "pipeline-1000.pcap.zst",
    "postgresql-psql.pcap",
    "recorded-nginx-curl.pcapng.zst",
    "redis-cli.pcap",
    "tunnels.pcap",
];

/// The project's virtualenv python (scripts/setup.sh) when there is one, else python3.
fn python() -> PathBuf {
    let venv = std::env::var_os("JUNO_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/juno/venv")));
    venv.map(|v| v.join("bin/python"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn check_seed(seed: u16) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for f in FIXTURES {
        let out = dir.path().join(format!("{f}.jsonl"));
        let text = analyze_ok([
            "--community-id-seed".into(),
            seed.to_string().into(),
            "logs".into(),
            fixture(f).into_os_string(),
        ]);
        let n = text.lines().count();
        assert!(n > 0, "{f}: no exchanges");
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v["community_id"].as_str().unwrap();
            assert!(id.starts_with("1:") && id.len() == 30, "{f}: {id}");
        }
        std::fs::write(&out, text).unwrap();
        files.push(out);
    }
    let run = Command::new(python())
        .arg(root().join("scripts/check-community-id.py"))
        .arg(seed.to_string())
        .args(&files)
        .output()
        .expect("run scripts/check-community-id.py");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn community_ids_of_every_fixture_match_an_independent_computation() {
    check_seed(0);
}

#[test]
fn community_id_seed_option_matches_an_independent_computation() {
    check_seed(4711);
}

/// The same connection gets the same ID in JSON lines and in its Zeek log's last column.
#[test]
fn zeek_logs_end_with_the_community_id_column() {
    let dir = tempfile::tempdir().unwrap();
    analyze_ok([
        "logs".into(),
        fixture("http-nginx-curl.pcap").into_os_string(),
        "--format".into(),
        "zeek".into(),
        "--out-dir".into(),
        dir.path().as_os_str().to_owned(),
    ]);
    let log = std::fs::read_to_string(dir.path().join("http.log")).unwrap();
    let fields: Vec<&str> = log
        .lines()
        .find_map(|l| l.strip_prefix("#fields\t"))
        .unwrap()
        .split('\t')
        .collect();
    assert_eq!(fields.last(), Some(&"community_id"));
    let ex: Vec<serde_json::Value> = analyze_ok(["logs".into(), fixture("http-nginx-curl.pcap")])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rows: Vec<Vec<&str>> = log
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
        .collect();
    assert!(!rows.is_empty());
    for r in rows {
        let uid = r[1];
        let want = ex
            .iter()
            .find(|e| e["uid"] == uid)
            .map(|e| e["community_id"].as_str().unwrap())
            .unwrap();
        assert_eq!(r.last(), Some(&want), "{uid}");
    }
}
