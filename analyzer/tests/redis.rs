//! Redis: golden tests on the capture recorded from real redis-server, redis-cli,
//! redis-benchmark and a small RESP client (`fixtures/make-redis.sh`), checks against what
//! those clients received (`fixtures/redis-cli.commands.tsv`) and against tshark's RESP
//! dissection of the same capture.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;
use serde_json::Value;

const PCAP: &str = "redis-cli.pcap";

fn exchanges() -> Vec<Value> {
    jsonl(&analyze_ok([
        std::ffi::OsStr::new("logs"),
        fixture(PCAP).as_os_str(),
    ]))
}

/// Exchanges per connection (by client port), connections in the order they began.
fn by_conn(ex: &[Value]) -> Vec<(u64, Vec<&Value>)> {
    let mut m: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in ex {
        m.entry(e["client"]["port"].as_u64().unwrap())
            .or_default()
            .push(e);
    }
    let mut v: Vec<(u64, Vec<&Value>)> = m.into_iter().collect();
    for (_, x) in &mut v {
        x.sort_by_key(|e| e["depth"].as_u64().unwrap());
    }
    v.sort_by_key(|(_, x)| x[0]["ts"].as_str().unwrap().to_string());
    v
}

fn s<'a>(e: &'a Value, k: &str) -> Option<&'a str> {
    e["redis"][k].as_str()
}

#[test]
fn redis_cli_golden_outputs() {
    golden_outputs(PCAP, "redis-cli", &["redis"]);
}

/// The analyzer's reply rendering (`[a, b]`, `{k: v}`) as redis-cli prints it: one line per
/// element, a map's key and value on one line.
fn as_cli_lines(e: &Value) -> String {
    let v = s(e, "reply_value").unwrap_or("-");
    match s(e, "reply_type") {
        Some("array") | Some("set") => v[1..v.len() - 1]
            .split(", ")
            .collect::<Vec<_>>()
            .join(" | "),
        Some("map") => v[1..v.len() - 1]
            .split(", ")
            .map(|kv| kv.replacen(": ", " ", 1))
            .collect::<Vec<_>>()
            .join(" | "),
        _ => v.to_string(),
    }
}

/// Every command the clients sent is there, on its connection and in order, with the status
/// and the reply the client received; commands Redis does not answer have no reply.
#[test]
fn redis_cli_matches_what_the_clients_saw() {
    let tsv = std::fs::read_to_string(fixture("redis-cli.commands.tsv")).unwrap();
    let mut want: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    let mut bench: BTreeMap<String, u64> = BTreeMap::new();
    for l in tsv.lines() {
        let f: Vec<String> = l.split('\t').map(String::from).collect();
        if f[0] == "benchmark" {
            bench.insert(f[2].clone(), f[5].parse().unwrap());
            continue;
        }
        match want.last_mut() {
            Some((c, rows)) if *c == f[1] => rows.push(f),
            _ => want.push((f[1].clone(), vec![f])),
        }
    }
    let ex = exchanges();
    let conns = by_conn(&ex);
    assert!(conns.len() > want.len());
    let mut checked = 0;
    for ((label, rows), (port, got)) in want.iter().zip(&conns) {
        assert_eq!(got.len(), rows.len(), "{label} (port {port})");
        for (w, e) in rows.iter().zip(got) {
            let ctx = format!("{label} {}: {e}", w[0]);
            assert_eq!(s(e, "command"), Some(w[2].as_str()), "{ctx}");
            if w[3] != "-" {
                assert_eq!(s(e, "key"), Some(w[3].as_str()), "{ctx}");
            }
            match w[4].as_str() {
                "none" => {
                    assert_eq!(e["outcome"], "no_response", "{ctx}");
                    assert!(s(e, "no_reply").is_some(), "{ctx}");
                }
                st => {
                    assert_eq!(e["outcome"], "complete", "{ctx}");
                    assert_eq!(e["redis"]["success"], st == "ok", "{ctx}");
                    if w[5] != "-" {
                        assert_eq!(as_cli_lines(e), w[5], "{ctx}");
                    }
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 43);
    // redis-benchmark: the connections after the clients' own. Each test's requests are
    // there, answered: PING_INLINE as inline commands, PING_MBULK as arrays.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (_, got) in &conns[want.len()..] {
        for e in got {
            assert_eq!(e["outcome"], "complete", "{e}");
            let name = s(e, "command").unwrap().to_string();
            let name = match name.as_str() {
                "PING" if e["redis"]["inline"] == true => "PING_INLINE".into(),
                "PING" => "PING_MBULK".into(),
                _ => name,
            };
            *counts.entry(name).or_default() += 1;
        }
    }
    for (test, n) in &bench {
        assert_eq!(counts.get(test), Some(n), "redis-benchmark {test}");
    }
    assert_eq!(bench.len(), 4);
}

/// tshark's RESP dissector, on the same capture, sees the same commands on every connection
/// (those sent as arrays: tshark shows inline commands only as fragments), and the same
/// simple-string and error replies in the same order. tshark does not pair commands with
/// replies, so pairing is checked above against the clients.
#[test]
fn redis_cli_agrees_with_tshark() {
    require("tshark");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(fixture(PCAP))
        .args([
            "-Y",
            "resp",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-E",
            "aggregator=,",
        ])
        .args([
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "resp.array.length",
        ])
        .args([
            "-e",
            "resp.bulk_string.value",
            "-e",
            "resp.string",
            "-e",
            "resp.error",
        ])
        .args(["-e", "_ws.col.Info"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let hex = |h: &str| -> String {
        let b: Vec<u8> = (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    let list = |f: &str| -> Vec<String> {
        if f.is_empty() {
            Vec::new()
        } else {
            f.split(',').map(String::from).collect()
        }
    };
    // Per client port: command names; simple strings and errors.
    let mut t_cmds: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut t_simple: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f[6].contains("continuation") || f[6].contains("reassembled PDU") {
            continue;
        }
        let (sp, dp): (u64, u64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        if dp == 6379 {
            let lens: Vec<usize> = list(f[2]).iter().map(|l| l.parse().unwrap()).collect();
            let vals = list(f[3]);
            let mut at = 0;
            for n in lens {
                if let Some(v) = vals.get(at) {
                    t_cmds.entry(sp).or_default().push(hex(v));
                }
                at += n;
            }
        } else {
            // Error texts may hold commas: an error frame here carries exactly one.
            let simple = t_simple.entry(dp).or_default();
            simple.extend(list(f[4]));
            if !f[5].is_empty() {
                simple.push(f[5].to_string());
            }
        }
    }
    let mut o_cmds: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut o_simple: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for e in exchanges() {
        let port = e["client"]["port"].as_u64().unwrap();
        if e["redis"]["inline"] != true {
            o_cmds
                .entry(port)
                .or_default()
                .push(s(&e, "command").unwrap().into());
        }
        if matches!(s(&e, "reply_type"), Some("simple_string" | "error")) {
            o_simple
                .entry(port)
                .or_default()
                .push(s(&e, "reply_value").unwrap().into());
        }
    }
    t_simple.retain(|_, v| !v.is_empty());
    assert_eq!(o_cmds, t_cmds);
    assert_eq!(o_simple, t_simple);
    assert!(t_cmds.values().map(Vec::len).sum::<usize>() > 60);
}
