//! DNS: golden outputs of the dig/dnsmasq fixture, checks of the analyzer against what dig
//! received (`fixtures/dns-dig.answers.tsv`) and against tshark's dissection of the same
//! capture, and the Zeek corpus's DNS traces row by row.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use common::*;

const PCAP: &str = "dns-dig.pcap";

fn ours() -> Vec<serde_json::Value> {
    jsonl(&analyze_ok([OsStr::new("logs"), fixture(PCAP).as_os_str()]))
}

fn s(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[test]
fn dns_dig_golden_outputs() {
    golden_outputs(PCAP, "dns-dig", &["dns"]);
}

/// dig's rendering of a record's data, turned into Zeek's (`TXT "a b" "c"` →
/// `TXT 3 a b TXT 1 c`, names without their trailing dot, MX and SRV by their target).
fn zeek_answer(dig: &str) -> String {
    let (ty, data) = dig.split_once(' ').unwrap();
    match ty {
        "TXT" | "SPF" => {
            let strings: Vec<&str> = data
                .split('"')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s)
                .collect();
            strings
                .iter()
                .map(|s| format!("{ty} {} {s}", s.len()))
                .collect::<Vec<_>>()
                .join(" ")
        }
        _ => data
            .split(' ')
            .next_back()
            .unwrap()
            .trim_end_matches('.')
            .to_string(),
    }
}

/// Every exchange dig reported is there — same transport, id, question, status, flags and
/// answers — and nothing else is.
#[test]
fn dns_dig_matches_what_dig_saw() {
    let tsv = std::fs::read_to_string(fixture("dns-dig.answers.tsv")).unwrap();
    let ex = ours();
    let mut seen = BTreeSet::new();
    let mut labels = BTreeSet::new();
    for line in tsv.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (label, transport, id, qname, qtype, status, flags, answers) =
            (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
        labels.insert(label);
        let id: u64 = id.parse().unwrap();
        let i = ex
            .iter()
            .position(|e| e["transport"] == transport && e["dns"]["trans_id"] == id)
            .unwrap_or_else(|| panic!("{label}: no exchange with id {id}"));
        assert!(seen.insert(i), "{label}: exchange {i} matched twice");
        let e = &ex[i];
        let d = &e["dns"];
        assert_eq!(s(&d["query"]), qname, "{label}");
        assert_eq!(s(&d["qtype_name"]), qtype, "{label}");
        if status == "-" {
            assert_eq!(e["outcome"], "no_response", "{label}");
            assert!(d.get("rcode").is_none(), "{label}");
            continue;
        }
        assert_eq!(e["outcome"], "complete", "{label}");
        assert_eq!(s(&d["rcode_name"]), status, "{label}");
        let flags: BTreeSet<&str> = flags.split(' ').collect();
        for (flag, field) in [
            ("aa", "AA"),
            ("tc", "truncated"),
            ("rd", "RD"),
            ("ra", "RA"),
        ] {
            assert_eq!(
                d[field].as_bool(),
                Some(flags.contains(flag)),
                "{label}: {flag}"
            );
        }
        let want: Vec<String> = answers
            .split(" | ")
            .filter(|a| !a.is_empty())
            .map(zeek_answer)
            .collect();
        let got: Vec<String> = d["answers"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        assert_eq!(got, want, "{label}");
        if !want.is_empty() {
            assert_eq!(d["TTLs"].as_array().unwrap().len(), want.len());
        }
    }
    assert_eq!(seen.len(), ex.len(), "exchanges dig did not report");
    // The fixture covers what it claims to.
    for l in [
        "udp-a",
        "udp-aaaa",
        "udp-cname",
        "udp-mx",
        "udp-txt",
        "udp-srv",
        "udp-ptr",
        "udp-nxdomain",
        "udp-truncated",
        "tcp-a",
        "tcp-nxdomain",
        "tcp-keepopen",
        "udp-unanswered",
    ] {
        assert!(labels.contains(l), "{l}");
    }
    // dig's three queries on one TCP connection are three exchanges of one connection.
    let keep: BTreeSet<&str> = tsv
        .lines()
        .filter(|l| l.starts_with("tcp-keepopen\t"))
        .map(|l| l.split('\t').nth(2).unwrap())
        .collect();
    let uids: Vec<&str> = ex
        .iter()
        .filter(|e| keep.contains(s(&e["dns"]["trans_id"]).as_str()) && e["transport"] == "tcp")
        .map(|e| e["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), 3);
    assert!(uids.iter().all(|u| *u == uids[0]));
}

/// tshark dissects the same messages: per transport and id, the same question, response
/// code and answer count.
#[test]
fn dns_dig_agrees_with_tshark() {
    require("tshark");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(fixture(PCAP))
        // tshark calls DNS on port 5353 mDNS (the unanswered query: it also dissects the
        // copy quoted by the ICMP port-unreachable, the same query again).
        .args(["-Y", "dns || mdns", "-T", "fields", "-E", "occurrence=f"])
        .args(["-e", "udp.port", "-e", "tcp.port", "-e", "dns.id"])
        .args(["-e", "dns.flags.response", "-e", "dns.qry.name"])
        .args(["-e", "dns.qry.type", "-e", "dns.flags.rcode"])
        .args(["-e", "dns.count.answers", "-e", "dns.flags.truncated"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // (transport, id) -> (query, qtype, Option<(rcode, answers, tc)>)
    type Msg = (String, u64, Option<(u64, u64, bool)>);
    let mut tshark: BTreeMap<(String, u64), Msg> = BTreeMap::new();
    let num = |v: &str| -> u64 {
        v.strip_prefix("0x")
            .map(|h| u64::from_str_radix(h, 16).unwrap())
            .unwrap_or_else(|| v.parse().unwrap())
    };
    let bit = |v: &str| v == "1" || v == "True";
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let transport = if f[0].is_empty() { "tcp" } else { "udp" };
        let key = (transport.to_string(), num(f[2]));
        let m = tshark
            .entry(key)
            .or_insert((f[4].to_string(), num(f[5]), None));
        assert_eq!(m.0, f[4]);
        if bit(f[3]) {
            m.2 = Some((num(f[6]), num(f[7]), bit(f[8])));
        }
    }
    let mut mine = BTreeMap::new();
    for e in ours() {
        let d = &e["dns"];
        let resp = d.get("rcode").map(|r| {
            (
                r.as_u64().unwrap(),
                d["total_answers"].as_u64().unwrap(),
                d["truncated"].as_bool().unwrap(),
            )
        });
        mine.insert(
            (s(&e["transport"]), d["trans_id"].as_u64().unwrap()),
            (s(&d["query"]), d["qtype"].as_u64().unwrap(), resp),
        );
    }
    assert_eq!(mine.len(), 15);
    assert_eq!(mine, tshark);
}

const DNS_FIELDS: &[&str] = &[
    "proto",
    "trans_id",
    "query",
    "qclass_name",
    "qtype_name",
    "rcode_name",
    "AA",
    "TC",
    "RD",
    "RA",
    "answers",
    "TTLs",
    "rejected",
];
const CONN: &[&str] = &["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"];

/// Every DNS row Zeek logged for the shared corpus is reproduced on every field score.py
/// compares, per connection and in order. In `spf` the query's IPv4 header checksum is 0
/// (captured on the sending host, which offloads it): Zeek, run without `-C`, drops it and
/// logs the response alone (no query class or type, RD unset), and so does the analyzer.
#[test]
fn every_dns_row_zeek_logged_is_reproduced() {
    let corpus = shared().join("corpus/zeek");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("manifest.json")).unwrap())
            .unwrap();
    let mut rows = 0;
    let mut differences = Vec::new();
    for c in manifest
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["proto"] == "dns")
    {
        let name = c["name"].as_str().unwrap();
        let expected = zeek_rows(
            &std::fs::read_to_string(corpus.join(c["expected"].as_str().unwrap())).unwrap(),
        );
        let d = tmp();
        write_zeek_logs(corpus.join(c["trace"].as_str().unwrap()), d.path());
        let produced = zeek_rows(&std::fs::read_to_string(d.path().join("dns.log")).unwrap());
        let key = |r: &BTreeMap<String, String>| {
            CONN.iter()
                .map(|k| r.get(*k).cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        };
        let mut by_conn: BTreeMap<Vec<String>, Vec<&BTreeMap<String, String>>> = BTreeMap::new();
        for r in &produced {
            by_conn.entry(key(r)).or_default().push(r);
        }
        let mut next: BTreeMap<Vec<String>, usize> = BTreeMap::new();
        for e in &expected {
            let k = key(e);
            let i = next.entry(k.clone()).or_default();
            let got = by_conn
                .get(&k)
                .and_then(|v| v.get(*i))
                .unwrap_or_else(|| panic!("{name}: no row for connection {k:?}"));
            *i += 1;
            for f in DNS_FIELDS {
                if e.get(*f) != got.get(*f) {
                    differences.push(format!("{name} {f}"));
                }
            }
            rows += 1;
        }
        assert_eq!(produced.len(), expected.len(), "{name}");
    }
    assert_eq!(rows, 11);
    assert_eq!(differences, [] as [&str; 0], "fields that differ from Zeek");
}

/// A response seen first between two port-53 endpoints (Zeek's `flip` trace): the sender of
/// the response is the server, as Zeek decides.
#[test]
fn response_first_reverses_roles() {
    let trace = shared().join("corpus/zeek/dns/flip.pcap");
    let ex = jsonl(&analyze_ok([OsStr::new("logs"), trace.as_os_str()]));
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0]["client"]["ip"], "10.20.1.31");
    assert_eq!(ex[0]["server"]["ip"], "207.158.192.40");
    assert_eq!(ex[0]["outcome"], "no_request");
}

mod pcapgen;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Zeek's pairing rules through the whole pipeline (a capture written here, `logs --format
/// zeek`): an mDNS query and answer to the multicast group are two rows; an answer captured
/// before its query is one row; a query answered 15 s later, after Zeek's DNS session
/// timeout, is two.
#[test]
fn zeek_pairing_rules_through_the_pipeline() {
    use std::net::Ipv4Addr;
    let host = Ipv4Addr::new(192, 168, 1, 10);
    let group = Ipv4Addr::new(224, 0, 0, 251);
    let (c, s) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let mut p = pcapgen::Pcap::default();
    let t0 = 1_700_000_000_000_000;
    p.udp(
        t0,
        (host, 5353),
        (group, 5353),
        &hex("000000000001000000000000055f68747470045f746370056c6f63616c00000c0001"),
    );
    p.udp(
        t0 + 1000,
        (host, 5353),
        (group, 5353),
        &hex("000084000000000100000000055f68747470045f746370056c6f63616c00000c000100001194001d0a4d79205072696e746572055f68747470045f746370056c6f63616c00"),
    );
    p.udp(
        t0 + 2000,
        (s, 53),
        (c, 5000),
        &hex("00078180000100010000000003777777076578616d706c6503636f6d000001000103777777076578616d706c6503636f6d00000100010000003c00045db8d822"),
    );
    p.udp(
        t0 + 3000,
        (c, 5000),
        (s, 53),
        &hex("00070100000100000000000003777777076578616d706c6503636f6d0000010001"),
    );
    p.udp(
        t0 + 4000,
        (c, 5001),
        (s, 53),
        &hex("00080100000100000000000003777777076578616d706c6503636f6d0000010001"),
    );
    p.udp(
        t0 + 15_004_000,
        (s, 53),
        (c, 5001),
        &hex("00088180000100010000000003777777076578616d706c6503636f6d000001000103777777076578616d706c6503636f6d00000100010000003c00045db8d822"),
    );
    let d = tmp();
    let f = d.path().join("rules.pcap");
    std::fs::write(&f, p.bytes()).unwrap();
    write_zeek_logs(&f, d.path());
    let rows = zeek_rows(&std::fs::read_to_string(d.path().join("dns.log")).unwrap());
    let mut got: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut v: Vec<String> = CONN.iter().map(|k| r[*k].clone()).collect();
            v.extend(DNS_FIELDS.iter().map(|k| r[*k].clone()));
            v.join(" ")
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "10.0.0.1 5000 10.0.0.2 53 udp 7 www.example.com C_INTERNET A NOERROR F F T T 93.184.216.34 60.000000 F",
            "10.0.0.1 5001 10.0.0.2 53 udp 8 www.example.com - - NOERROR F F F T 93.184.216.34 60.000000 F",
            "10.0.0.1 5001 10.0.0.2 53 udp 8 www.example.com C_INTERNET A - F F T F - - F",
            "192.168.1.10 5353 224.0.0.251 5353 udp 0 _http._tcp.local - - NOERROR T F F F my printer._http._tcp.local 4500.000000 F",
            "192.168.1.10 5353 224.0.0.251 5353 udp 0 _http._tcp.local C_INTERNET PTR - F F F F - - F",
        ]
    );
}

/// Zeek's IPv4 header checksum rule (docs/dns.md): a query whose IPv4 header checksum is wrong
/// (0 included) is skipped, counted and warned about, so its answer is logged alone (no rtt,
/// the answer's flags); `--ignore-checksums` reads it and pairs the two.
#[test]
fn a_query_with_a_bad_ip_header_checksum_is_skipped_unless_told() {
    use std::net::Ipv4Addr;
    let (c, s) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    for zero in [false, true] {
        let mut p = pcapgen::Pcap::default();
        let t0 = 1_700_000_000_000_000;
        p.udp(
            t0,
            (c, 5000),
            (s, 53),
            &hex("00070100000100000000000003777777076578616d706c6503636f6d0000010001"),
        );
        if zero {
            p.zero_last_ip_checksum();
        } else {
            p.spoil_last_ip_checksum();
        }
        p.udp(
            t0 + 2000,
            (s, 53),
            (c, 5000),
            &hex("00078180000100010000000003777777076578616d706c6503636f6d000001000103777777076578616d706c6503636f6d00000100010000003c00045db8d822"),
        );
        let d = tmp();
        let f = d.path().join("bad-checksum.pcap");
        std::fs::write(&f, p.bytes()).unwrap();
        let rows = |extra: &[&str], out: &Path| {
            let o = analyze(
                [
                    ["logs".as_ref(), f.as_os_str()].as_slice(),
                    &[
                        "--format".as_ref(),
                        "zeek".as_ref(),
                        "--out-dir".as_ref(),
                        out.as_os_str(),
                    ],
                    &extra.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>(),
                ]
                .concat(),
            );
            let rows = zeek_rows(&std::fs::read_to_string(out.join("dns.log")).unwrap())
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {} {}",
                        r["trans_id"], r["rtt"], r["qtype_name"], r["RD"]
                    )
                })
                .collect::<Vec<_>>();
            (o, rows)
        };
        let (o, got) = rows(&[], &d.path().join("default"));
        assert_eq!(got, ["7 - - F"], "zero checksum: {zero}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("1 IPv4 packets skipped: their header checksum is wrong")
                && err.contains("--ignore-checksums reads them"),
            "{err}"
        );
        let (o, got) = rows(&["--ignore-checksums"], &d.path().join("ignored"));
        assert!(o.status.success());
        assert_eq!(got, ["7 0.002000 A T"], "zero checksum: {zero}");
    }
}
