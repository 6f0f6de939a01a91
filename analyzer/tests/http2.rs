//! HTTP/2 and gRPC: golden outputs of the h2c / gRPC fixture, checks of the analyzer against
//! what the clients did and received (`fixtures/http2-grpc.truth.tsv`) and against tshark's
//! dissection of the same capture, stream by stream.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::process::Command;

use common::*;
use serde_json::Value as J;

const PCAP: &str = "http2-grpc.pcap";
/// The servers' ports in the fixture (nginx, the h2c upgrade server, gRPC).
const SERVER_PORTS: [u64; 3] = [80, 8080, 50051];

fn ours() -> Vec<J> {
    jsonl(&analyze_ok([OsStr::new("logs"), fixture(PCAP).as_os_str()]))
}

fn port(ex: &J, side: &str) -> u64 {
    ex[side]["port"].as_u64().unwrap()
}

#[test]
fn http2_grpc_golden_outputs() {
    golden_outputs(PCAP, "http2-grpc", &[]);
    let f = fixture(PCAP);
    // Zeek has no HTTP/2 log: `--format zeek` writes http.log with the upgrade's 101 only.
    let d = tmp();
    write_zeek_logs(&f, d.path());
    assert!(!d.path().join("http2.log").exists());
    let http = zeek_rows(&std::fs::read_to_string(d.path().join("http.log")).unwrap());
    assert_eq!(http.len(), 1);
    assert_eq!(http[0]["status_code"], "101");
}

struct Truth {
    label: String,
    port: u64,
    method: String,
    path: String,
    status: u64,
    /// gRPC: status, messages sent, messages received.
    grpc: Option<(u64, u64, u64)>,
}

fn truth() -> Vec<Truth> {
    let text = std::fs::read_to_string(fixture("http2-grpc.truth.tsv")).unwrap();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 8, "{l}");
            Truth {
                label: f[0].into(),
                port: f[1].parse().unwrap(),
                method: f[2].into(),
                path: f[3].into(),
                status: f[4].parse().unwrap(),
                grpc: (f[5] != "-").then(|| {
                    (
                        f[5].parse().unwrap(),
                        f[6].parse().unwrap(),
                        f[7].parse().unwrap(),
                    )
                }),
            }
        })
        .collect()
}

/// Every request the clients made is one complete exchange with the method, path and status
/// they saw; gRPC calls also with the grpc-status and message counts each way.
#[test]
fn http2_grpc_matches_what_the_clients_did() {
    let ex = ours();
    let h2: Vec<&J> = ex.iter().filter(|e| e["protocol"] == "http2").collect();
    let truth = truth();
    assert_eq!(truth.len(), 14);
    assert_eq!(h2.len(), truth.len());
    for t in &truth {
        let found: Vec<&&J> = h2
            .iter()
            .filter(|e| {
                port(e, "server") == t.port
                    && e["http2"]["method"] == t.method.as_str()
                    && e["http2"]["uri"] == t.path.as_str()
            })
            .collect();
        assert_eq!(found.len(), 1, "{}: {} {}", t.label, t.method, t.path);
        let e = found[0];
        let f = &e["http2"];
        assert_eq!(e["outcome"], "complete", "{}", t.label);
        assert_eq!(f["status_code"], t.status, "{}", t.label);
        assert_eq!(f["version"], "2");
        match t.grpc {
            Some((status, sent, received)) => {
                let (svc, m) = t.path[1..].split_once('/').unwrap();
                assert_eq!(f["grpc_service"], svc);
                assert_eq!(f["grpc_method"], m);
                assert_eq!(f["grpc_status"], status, "{}", t.label);
                assert_eq!(f["grpc_request_messages"], sent, "{}", t.label);
                assert_eq!(f["grpc_response_messages"], received, "{}", t.label);
            }
            None => assert!(f.get("grpc_status").is_none()),
        }
    }
    // The failing call's message, percent-decoded.
    let fail = h2
        .iter()
        .find(|e| e["http2"]["grpc_method"] == "Fail")
        .unwrap();
    assert_eq!(fail["http2"]["grpc_message"], "no such thing: thing-42");
    // The upgrade: HTTP/1's 101, then stream 1 carries the upgraded request.
    let up: Vec<&J> = ex.iter().filter(|e| port(e, "server") == 8080).collect();
    assert_eq!(up.len(), 3);
    assert_eq!(up[0]["protocol"], "http");
    assert_eq!(up[0]["http"]["status_code"], 101);
    assert_eq!(up[1]["http2"]["stream_id"], 1);
    assert_eq!(up[1]["http2"]["upgraded"], true);
    assert_eq!(up[2]["http2"]["stream_id"], 3);
    // The four multiplexed requests share one connection.
    let par: Vec<&&J> = h2
        .iter()
        .filter(|e| {
            e["http2"]["user_agent"]
                .as_str()
                .unwrap_or("")
                .starts_with("nghttp2")
        })
        .collect();
    assert_eq!(par.len(), 4);
    assert!(par.iter().all(|e| e["uid"] == par[0]["uid"]));
}

/// What tshark's HTTP/2 dissector makes of one HEADERS (or PUSH_PROMISE) frame.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    method: Option<String>,
    path: Option<String>,
    status: Option<u64>,
    grpc_status: Option<u64>,
}

fn as_list(v: &J) -> Vec<&J> {
    match v {
        J::Array(a) => a.iter().collect(),
        J::Null => Vec::new(),
        other => vec![other],
    }
}

/// tshark's dissection of every HEADERS frame, merged per (client port, stream id): the
/// method, path, status and grpc-status must be ours on every stream, and the streams the
/// same set.
#[test]
fn http2_grpc_agrees_with_tshark() {
    require("tshark");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(fixture(PCAP))
        // Port 80 (the preface) and the upgrade are recognised by tshark itself; gRPC's port
        // is not an HTTP port.
        .args(["-d", "tcp.port==50051,http2", "-Y", "http2", "-T", "json"])
        .arg("--no-duplicate-keys")
        .output()
        .unwrap();
    assert!(out.status.success());
    let packets: J = serde_json::from_slice(&out.stdout).unwrap();
    let mut tshark: BTreeMap<(u64, u64), Seen> = BTreeMap::new();
    for p in packets.as_array().unwrap() {
        let l = &p["_source"]["layers"];
        let ports = [
            l["tcp"]["tcp.srcport"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
            l["tcp"]["tcp.dstport"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        ];
        let client = *ports.iter().find(|p| !SERVER_PORTS.contains(p)).unwrap();
        for h2 in as_list(&l["http2"]) {
            for st in as_list(&h2["http2.stream"]) {
                if st["http2.type"] != "1" {
                    continue;
                }
                let id: u64 = st["http2.streamid"].as_str().unwrap().parse().unwrap();
                let seen = tshark.entry((client, id)).or_default();
                for h in as_list(&st["http2.header"]) {
                    let (n, v) = (
                        h["http2.header.name"].as_str().unwrap_or(""),
                        h["http2.header.value"].as_str().unwrap_or("").to_string(),
                    );
                    match n {
                        ":method" => seen.method = Some(v),
                        ":path" => seen.path = Some(v),
                        ":status" => seen.status = Some(v.parse().unwrap()),
                        "grpc-status" => seen.grpc_status = Some(v.parse().unwrap()),
                        _ => {}
                    }
                }
            }
        }
    }
    let mut mine: BTreeMap<(u64, u64), Seen> = BTreeMap::new();
    for e in ours().iter().filter(|e| e["protocol"] == "http2") {
        let f = &e["http2"];
        let id = f["stream_id"].as_u64().unwrap();
        let upgraded = f.get("upgraded").is_some();
        let s = |k: &str| f[k].as_str().map(String::from);
        mine.insert(
            (port(e, "client"), id),
            Seen {
                // The upgraded request was HTTP/1: no HTTP/2 HEADERS for tshark to show.
                method: if upgraded { None } else { s("method") },
                path: if upgraded { None } else { s("uri") },
                status: f["status_code"].as_u64(),
                grpc_status: f["grpc_status"].as_u64(),
            },
        );
    }
    assert_eq!(tshark.len(), 14);
    assert_eq!(mine, tshark);
}
