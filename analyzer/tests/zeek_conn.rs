//! conn.log against Zeek's own: the Zeek test traces in fixtures/zeek-conn and the conn.log
//! baselines Zeek's test suite stores for them, scored by scripts/score-conn-log.py (rows
//! aligned by 5-tuple; conn_state, history, bytes and packets must agree on ≥ 98% of Zeek's
//! values, a missing row counting as a miss in each).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::process::Command;

use common::*;

#[test]
fn conn_log_agrees_with_zeek_baselines_on_state_history_bytes_and_packets() {
    let run = Command::new("python3")
        .arg(root().join("scripts/score-conn-log.py"))
        .args(["--analyzer", env!("CARGO_BIN_EXE_juno-analyze")])
        .arg("--corpus")
        .arg(fixture("zeek-conn"))
        .args(["--min", "98"])
        .output()
        .expect("run scripts/score-conn-log.py");
    let out = String::from_utf8_lossy(&run.stdout);
    eprintln!("{out}{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "below 98%:\n{out}");
    assert!(out.contains("conn_state"), "{out}");
}

/// Every packet-vantage connection is one conn.log row, with the same uid and Community ID
/// as its exchanges, and the JSON lines carry the same values as the TSV.
#[test]
fn conn_log_rows_match_connections_jsonl_and_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let (z, j) = (dir.path().join("z"), dir.path().join("j"));
    for (fmt, d) in [("zeek", &z), ("jsonl", &j)] {
        analyze_ok([
            "logs".into(),
            fixture("http-nginx-curl.pcap").into_os_string(),
            "--format".into(),
            fmt.into(),
            "--out-dir".into(),
            d.as_os_str().to_owned(),
        ]);
    }
    let log = std::fs::read_to_string(z.join("conn.log")).unwrap();
    let fields: Vec<&str> = log
        .lines()
        .find_map(|l| l.strip_prefix("#fields\t"))
        .unwrap()
        .split('\t')
        .collect();
    assert_eq!(fields.last(), Some(&"community_id"));
    let rows: Vec<std::collections::HashMap<&str, &str>> = log
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| fields.iter().copied().zip(l.split('\t')).collect())
        .collect();
    let conns: Vec<serde_json::Value> = std::fs::read_to_string(j.join("connections.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ex: Vec<serde_json::Value> = std::fs::read_to_string(j.join("exchanges.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!rows.is_empty());
    assert_eq!(rows.len(), conns.len());
    for (r, c) in rows.iter().zip(&conns) {
        assert_eq!(r["uid"], c["uid"]);
        assert_eq!(r["community_id"], c["community_id"]);
        assert_eq!(r["history"], c["history"]);
        assert_eq!(r["conn_state"], c["conn_state"]);
        assert_eq!(r["orig_pkts"], c["orig_pkts"].to_string());
        assert_eq!(r["resp_ip_bytes"], c["resp_ip_bytes"].to_string());
        // curl → nginx on loopback: full handshakes and FIN closes.
        assert_eq!(r["conn_state"], "SF", "{r:?}");
        assert!(r["history"].starts_with("ShAD"), "{r:?}");
    }
    for e in &ex {
        let r = rows.iter().find(|r| r["uid"] == e["uid"]).unwrap();
        assert_eq!(r["community_id"], e["community_id"]);
    }
}
