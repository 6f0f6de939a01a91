//! One connection, many vantage points (docs/fidelity.md): the views of a connection share
//! one uid, every view but the first is a duplicate, graphs and reports count the connection
//! once, and the report's capture-fidelity section compares what the views saw.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;
#[path = "pcapgen/mod.rs"]
mod pcapgen;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use common::*;
use serde_json::Value;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const REQ: &[u8] = b"GET /a HTTP/1.1\r\nHost: svc\r\n\r\n";
const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn rows(inputs: &[&Path], extra: &[&str]) -> Vec<Value> {
    let mut args: Vec<&std::ffi::OsStr> = vec!["logs".as_ref()];
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    jsonl(&analyze_ok(args))
}

#[test]
fn a_recorded_archive_has_one_uid_per_connection_and_counts_it_once() {
    let archive = fixture("recorded-nginx-curl.pcapng.zst");
    let requests = std::fs::read_to_string(fixture("recorded-nginx-curl.requests.tsv"))
        .unwrap()
        .lines()
        .count() as u64;
    let lines = rows(&[&archive], &[]);
    // Each request was recorded three times: on the veth, in curl's socket, in nginx's.
    assert_eq!(lines.len() as u64, 3 * requests);
    let mut by_uid: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for l in &lines {
        by_uid
            .entry(l["uid"].as_str().unwrap())
            .or_default()
            .push(l);
    }
    assert_eq!(by_uid.len() as u64, requests, "one uid per connection");
    for (uid, views) in &by_uid {
        let mut kinds: Vec<(String, bool)> = views
            .iter()
            .map(|v| {
                let k = v["vantage"]["kind"].as_str().unwrap();
                let who = v["vantage"]["comm"].as_str().unwrap_or("");
                (format!("{k}{who}"), v["duplicate"].as_bool().unwrap())
            })
            .collect();
        kinds.sort();
        // The veth saw the SYN before either process's socket event: it opened first.
        assert_eq!(
            kinds,
            [
                ("packets".to_string(), false),
                ("socketcurl".to_string(), true),
                ("socketnginx".to_string(), true)
            ],
            "{uid}"
        );
        let communities: BTreeSet<&str> = views
            .iter()
            .map(|v| v["community_id"].as_str().unwrap())
            .collect();
        assert_eq!(communities.len(), 1, "{uid}");
    }
    // The graph and the report count each connection and exchange once.
    let g: Value = serde_json::from_str(&analyze_ok([
        "graph".as_ref(),
        archive.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]))
    .unwrap();
    let edges = g["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["requests"], requests);
    assert_eq!(edges[0]["connections"], requests);
    let report = analyze_ok(["report".as_ref(), archive.as_os_str()]);
    for want in [
        format!("Connections    {requests} "),
        format!("Exchanges      {requests} complete,"),
        format!("  views        {} more of the same exchanges", 2 * requests),
        format!("  connections  {requests} seen from several vantage points; from one only: none"),
        format!("  packets      {requests} views:"),
        format!("  socket       {} views:", 2 * requests),
        format!(
            "  agreement    {requests} connections whose views saw the same stream length, 0 that differ"
        ),
    ] {
        assert!(report.contains(&want), "{want:?} in\n{report}");
    }
}

/// What two "nodes" captured of the same traffic: node A all of it; node B, whose clock is
/// 3 ms ahead, lost one segment of the first connection and began after the second one's
/// first exchange. A third connection reuses the first one's 5-tuple a minute later, seen
/// by node A only.
fn two_nodes(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut a = pcapgen::Pcap::default();
    let mut b = pcapgen::Pcap::default();
    let skew = 3_000;
    let t0 = 1_700_000_000_000_000u64;
    let c1 = ((CLIENT, 40001), (SERVER, 80));
    let c2 = ((CLIENT, 40002), (SERVER, 80));
    // Connection 1: two exchanges; node B misses the second response.
    let mut ta = a.tcp_open(t0, c1.0, c1.1);
    let mut tb = b.tcp_open(t0 + skew, c1.0, c1.1);
    for (i, lost_on_b) in [(0u64, false), (1, true)] {
        let t = t0 + 1_000 + i * 1_000;
        a.tcp_data(t, &mut ta, true, REQ);
        b.tcp_data(t + skew, &mut tb, true, REQ);
        a.tcp_data(t + 500, &mut ta, false, RESP);
        if lost_on_b {
            // Not captured on node B: its sequence numbers advance, nothing is written.
            pcapgen::Pcap::default().tcp_data(t + 500 + skew, &mut tb, false, RESP);
        } else {
            b.tcp_data(t + 500 + skew, &mut tb, false, RESP);
        }
    }
    a.tcp_close(t0 + 5_000, &mut ta);
    b.tcp_close(t0 + 5_000 + skew, &mut tb);
    // Connection 2: node B's capture begins after its first exchange.
    let t1 = t0 + 10_000;
    let mut ta = a.tcp_open(t1, c2.0, c2.1);
    let mut tb = pcapgen::Pcap::default().tcp_open(t1 + skew, c2.0, c2.1);
    for i in 0..2u64 {
        let t = t1 + 1_000 + i * 1_000;
        a.tcp_data(t, &mut ta, true, REQ);
        a.tcp_data(t + 500, &mut ta, false, RESP);
        if i == 0 {
            pcapgen::Pcap::default().tcp_data(t + skew, &mut tb, true, REQ);
            pcapgen::Pcap::default().tcp_data(t + 500 + skew, &mut tb, false, RESP);
        } else {
            b.tcp_data(t + skew, &mut tb, true, REQ);
            b.tcp_data(t + 500 + skew, &mut tb, false, RESP);
        }
    }
    a.tcp_close(t1 + 5_000, &mut ta);
    b.tcp_close(t1 + 5_000 + skew, &mut tb);
    // Connection 3: connection 1's 5-tuple again, a minute later, on node A only.
    let t2 = t0 + 60_000_000;
    let mut ta = a.tcp_open(t2, c1.0, c1.1);
    a.tcp_data(t2 + 1_000, &mut ta, true, REQ);
    a.tcp_data(t2 + 1_500, &mut ta, false, RESP);
    a.tcp_close(t2 + 2_000, &mut ta);
    let (pa, pb) = (dir.join("node-a.pcapng"), dir.join("node-b.pcapng"));
    std::fs::write(&pa, named(&a.bytes(), "node-a/veth1")).unwrap();
    std::fs::write(&pb, named(&b.bytes(), "node-b/veth7")).unwrap();
    (pa, pb)
}

/// The pcap `pcap` as a pcapng whose interface is named `name`: files of one unnamed
/// interface are one vantage point (a capture rotated into several files), so two nodes'
/// captures must say which interface they are, as Juno archives and `tcpdump -i` pcapngs do.
fn named(pcap: &[u8], name: &str) -> Vec<u8> {
    use common::hostile::ng;
    let mut out = ng::shb();
    out.extend(ng::idb(&[ng::opt(2, name.as_bytes())]));
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let word = |o: usize| u32::from_le_bytes(pcap[at + o..at + o + 4].try_into().unwrap());
        let ts_us = u64::from(word(0)) * 1_000_000 + u64::from(word(4));
        let len = word(8) as usize;
        out.extend(ng::epb(0, ts_us, &pcap[at + 16..at + 16 + len]));
        at += 16 + len;
    }
    out
}

#[test]
fn two_nodes_views_of_one_connection_are_linked_and_compared() {
    let dir = tmp();
    let (a, b) = two_nodes(dir.path());

    let lines = rows(&[&a, &b], &[]);
    // Node A: 2 + 2 + 1 exchanges; node B: 1 complete and 1 without response, then 1.
    assert_eq!(lines.len(), 8, "{lines:#?}");
    let uid = |port: u64, from_a: bool| -> BTreeSet<String> {
        lines
            .iter()
            .filter(|l| l["client"]["port"] == port && l["duplicate"] == !from_a)
            .map(|l| l["uid"].as_str().unwrap().to_string())
            .collect()
    };
    // Connections 1 and 3 share a 5-tuple: node A's views are two connections…
    let a1 = uid(40001, true);
    assert_eq!(a1.len(), 2, "{lines:#?}");
    // …and node B's view of connection 1 took the uid of node A's, which opened first.
    let b1 = uid(40001, false);
    assert_eq!(b1.len(), 1);
    assert!(a1.is_superset(&b1));
    assert_eq!(uid(40002, false), uid(40002, true));
    let outcomes: Vec<&str> = lines
        .iter()
        .filter(|l| l["duplicate"] == true)
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.contains(&"no_response"), "{outcomes:?}");

    // The order of the files and the thread count change nothing (but the interfaces'
    // numbers, which follow the order of the files).
    let without_iface = |mut v: Vec<Value>| {
        for l in &mut v {
            l["vantage"].as_object_mut().unwrap().remove("iface");
        }
        v
    };
    for (inputs, threads) in [([&b, &a], "1"), ([&a, &b], "2"), ([&b, &a], "8")] {
        let inputs = [inputs[0].as_path(), inputs[1].as_path()];
        assert_eq!(
            without_iface(rows(&inputs, &["--threads", threads])),
            without_iface(lines.clone()),
            "threads {threads}"
        );
    }

    let report = analyze_ok(["report".as_ref(), a.as_os_str(), b.as_os_str()]);
    for want in [
        "Connections    3 ",
        "Exchanges      5 complete, 0 truncated, 0 without response, 0 without request",
        "  views        3 more of the same exchanges",
        "  connections  2 seen from several vantage points; from one only: packets 1",
        "  packets      4 views:",
        // The lost response is a gap node B's view knows about: missing, and yet the same
        // stream as node A's.
        &format!(
            "missing {n} B in 1 views (lost {n} B, not captured 0 B)",
            n = RESP.len()
        ),
        "  agreement    1 connections whose views saw the same stream length, 1 that differ",
    ] {
        assert!(report.contains(want), "{want:?} in\n{report}");
    }
    // The connection that differs is named, with node B's shorter stream.
    let full = 2 * (REQ.len() + RESP.len());
    let late = REQ.len() + RESP.len();
    let named = report
        .lines()
        .find(|l| l.contains("10.9.0.1:40002 → 10.9.0.2:80"))
        .unwrap_or_else(|| panic!("connection 2 named in\n{report}"));
    assert!(
        named.contains(&format!("packets (node-a/veth1) {full} B"))
            && named.contains(&format!("packets (node-b/veth7) {late} B")),
        "{named}"
    );

    let g: Value = serde_json::from_str(&analyze_ok([
        "graph".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]))
    .unwrap();
    assert_eq!(g["edges"][0]["requests"], 5);
    assert_eq!(g["edges"][0]["connections"], 3);
}

/// The export says the same through SQL: one uid per connection, `duplicate` on the other
/// views, docs/export.md's service graph (which leaves duplicates out) equal to the graph's
/// counts, and its `capture_fidelity` query naming the connection whose views disagree.
#[cfg(feature = "export")]
#[test]
fn sql_over_the_export_counts_once_and_finds_the_disagreeing_views() {
    let dir = tmp();
    let (a, b) = two_nodes(dir.path());
    let recorded = fixture("recorded-nginx-curl.pcapng.zst");
    // (name, inputs, requests, views of the connections whose views disagree)
    for (name, inputs, requests, differ) in [
        (
            "two-nodes",
            vec![a.as_path(), b.as_path()],
            5u64,
            vec![2u64],
        ),
        ("recorded", vec![recorded.as_path()], 82, vec![]),
    ] {
        let ds = dir.path().join(name);
        let mut args: Vec<&std::ffi::OsStr> = vec!["export".as_ref()];
        args.extend(inputs.iter().map(|p| p.as_os_str()));
        args.extend(["--partition-by", "node,hour", "--out-dir"].map(std::ffi::OsStr::new));
        args.push(ds.as_os_str());
        analyze_ok(args);
        let seen = read_dataset(&ds);
        let graph: Value = serde_json::from_str(&analyze_ok({
            let mut g: Vec<&std::ffi::OsStr> = vec!["graph".as_ref()];
            g.extend(inputs.iter().map(|p| p.as_os_str()));
            g.extend(["--format", "json"].map(std::ffi::OsStr::new));
            g
        }))
        .unwrap();
        let sum = |rows: &Value, k: &str| -> u64 {
            rows.as_array()
                .unwrap()
                .iter()
                .map(|r| r[k].as_u64().unwrap())
                .sum()
        };
        let sql = &seen["queries"]["service_graph"];
        assert_eq!(sum(sql, "requests"), requests, "{name}");
        assert_eq!(
            sum(sql, "requests"),
            sum(&graph["edges"], "requests"),
            "{name}"
        );
        assert_eq!(
            sum(sql, "connections"),
            sum(&graph["edges"], "connections"),
            "{name}"
        );
        let rows = seen["queries"]["capture_fidelity"].as_array().unwrap();
        let views: Vec<u64> = rows.iter().map(|r| r["views"].as_u64().unwrap()).collect();
        assert_eq!(views, differ, "{name}: {rows:?}");
        // The rows have every view of the connections (three per recorded connection).
        let all = seen["duckdb_rows"]["exchanges"].as_u64().unwrap();
        let views = if name == "recorded" { 3 * requests } else { 8 };
        assert_eq!(all, views, "{name}");
    }
}
