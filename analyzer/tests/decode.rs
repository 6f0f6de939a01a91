//! Every packet a node's uplink carries: IP fragments reassembled (a DNS answer larger than the
//! MTU, IPv4 and IPv6: `fixtures/make-frag-dns.sh`), overlays opened (VXLAN, Geneve, GRE,
//! gretap, ERSPAN, IP in IP between two namespace "nodes": `fixtures/make-tunnels.sh`), link
//! types the decoder does not read named; and pairing that does not depend on the capture's
//! order (a merge with a skewed clock, a reversed file: both made from `http-nginx-curl.pcap`
//! here) or on pipelining depth (1,000 deep: `fixtures/make-deep-pipeline.sh`).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

fn logs(path: &Path) -> Vec<Value> {
    jsonl(&analyze_ok(["logs".as_ref(), path.as_os_str()]))
}

fn tsv(name: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

fn outcomes(ex: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in ex {
        *m.entry(e["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

#[test]
fn fragmented_dns_answers_are_reassembled_over_ipv4_and_ipv6() {
    let f = fixture("dns-frag.pcap");
    let ex = logs(&f);
    let truth = tsv("dns-frag.answers.tsv");
    assert_eq!(ex.len(), truth.len(), "{ex:#?}");
    for t in &truth {
        let (label, fam, name, ty, status, answers) = (&t[0], &t[1], &t[2], &t[3], &t[4], &t[5]);
        let e = ex
            .iter()
            .find(|e| {
                e["dns"]["query"] == name.as_str()
                    && e["dns"]["qtype_name"] == ty.as_str()
                    && e["server"]["ip"].as_str().unwrap().contains(':') == (fam == "6")
            })
            .unwrap_or_else(|| panic!("{label}: no exchange"));
        assert_eq!(e["outcome"], "complete", "{label}: {e:#}");
        assert_eq!(e["dns"]["rcode_name"], status.as_str(), "{label}");
        assert_eq!(
            e["dns"]["total_answers"].as_u64(),
            Some(answers.parse().unwrap()),
            "{label}"
        );
        if label.contains("big") {
            let a = e["dns"]["answers"].as_array().unwrap();
            assert_eq!(a.len(), 12, "{label}");
            assert!(a.iter().all(|x| x.as_str().unwrap().contains("frag-")));
        }
    }
    let report = analyze_ok(["report".as_ref(), f.as_os_str()]);
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with("ip fragments"))
        .unwrap();
    assert!(
        line.contains("in 2 datagrams reassembled; not reassembled 0"),
        "{line}"
    );
    // The reassembly runs once, in file order: the same output whatever the thread count.
    let one = analyze_ok([
        "--threads".as_ref(),
        "1".as_ref(),
        "logs".as_ref(),
        f.as_os_str(),
    ]);
    assert_eq!(one, analyze_ok(["logs".as_ref(), f.as_os_str()]));
}

#[test]
fn a_datagram_missing_a_fragment_is_counted_and_named_in_the_warning() {
    let mut p = read_pcap(&fixture("dns-frag.pcap"));
    // Drop the IPv4 answer's second fragment (offset set, more fragments set).
    let second = p
        .records
        .iter()
        .position(|(_, _, d)| {
            d.len() > 34 && d[12..14] == [0x08, 0x00] && {
                let frag = u16::from_be_bytes([d[20], d[21]]);
                frag & 0x1fff != 0 && frag & 0x2000 != 0
            }
        })
        .unwrap();
    p.records.remove(second);
    let d = tmp();
    let cut = d.path().join("cut.pcap");
    write_pcap(&p, &cut);
    let out = analyze(["logs".as_ref(), cut.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 fragmented IP datagrams not reassembled (2 fragments)")
            && err.contains("incomplete at the end 1"),
        "{err}"
    );
    let ex = jsonl(&String::from_utf8_lossy(&out.stdout));
    let v4_big = ex
        .iter()
        .find(|e| {
            e["dns"]["query"] == "big.fx.test" && !e["server"]["ip"].as_str().unwrap().contains(':')
        })
        .unwrap();
    assert_eq!(v4_big["outcome"], "no_response");
    let report = analyze_ok(["report".as_ref(), cut.as_os_str()]);
    assert!(
        report.contains("ip fragments 5 in 1 datagrams reassembled; not reassembled 1"),
        "{report}"
    );
}

/// The analyzer's tunnel kind for the fixture script's.
fn kind(script_kind: &str) -> &str {
    match script_kind {
        "gre6" => "gre",
        "erspan2" | "erspan3" => "erspan",
        k => k,
    }
}

#[test]
fn every_http_exchange_in_a_tunnel_has_inner_addresses_and_the_nodes() {
    let f = fixture("tunnels.pcap");
    let ex: Vec<Value> = logs(&f)
        .into_iter()
        .filter(|e| e["protocol"] == "http")
        .collect();
    let truth = tsv("tunnels.truth.tsv");
    assert_eq!(ex.len(), truth.len());
    let mut kinds = BTreeMap::new();
    for t in &truth {
        let (k, id, oa, ob, path) = (&t[0], &t[1], &t[2], &t[3], &t[4]);
        let (cip, cport, sip, sport, status) = (&t[5], &t[6], &t[7], &t[8], &t[9]);
        let e = ex
            .iter()
            .find(|e| {
                e["client"]["ip"] == cip.as_str()
                    && e["client"]["port"].as_u64() == Some(cport.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("{k} {path}: no exchange from {cip} {cport}"));
        assert_eq!(e["server"]["ip"], sip.as_str());
        assert_eq!(e["server"]["port"].as_u64(), Some(sport.parse().unwrap()));
        assert_eq!(e["outcome"], "complete", "{e:#}");
        assert_eq!(e["http"]["uri"], path.as_str());
        assert_eq!(
            e["http"]["status_code"].as_u64(),
            Some(status.parse().unwrap())
        );
        let tun = &e["tunnel"];
        assert_eq!(tun["kind"], kind(k), "{e:#}");
        assert_eq!(tun["src"], oa.as_str(), "{k}");
        assert_eq!(tun["dst"], ob.as_str(), "{k}");
        let want_id = (k != "ipip").then(|| id.parse::<u64>().unwrap());
        assert_eq!(tun["id"].as_u64(), want_id, "{k}");
        *kinds.entry(k.as_str()).or_insert(0) += 1;
    }
    assert_eq!(kinds.len(), 8, "{kinds:?}");
    // tshark's own dissection of the underlay finds the same requests.
    require("tshark");
    let out = Command::new("tshark")
        .args(["-r".as_ref(), f.as_os_str()])
        .args(["-d", "udp.port==8472,vxlan", "-Y", "http.request"])
        .args(["-T", "fields", "-e", "tcp.srcport"])
        .output()
        .unwrap();
    let ports: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(ports.len(), truth.len());
    for t in &truth {
        assert!(ports.contains(&t[6].as_str()), "tshark lacks {t:?}");
    }
}

/// A classic pcap file's header and records (timestamp, record header tail, data).
struct Pcap {
    header: Vec<u8>,
    records: Vec<(u64, Vec<u8>, Vec<u8>)>,
    /// Timestamp units per second.
    per_s: u64,
}

fn read_pcap(path: &Path) -> Pcap {
    let b = std::fs::read(path).unwrap();
    let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
    let per_s = match magic {
        0xa1b2_c3d4 => 1_000_000,
        0xa1b2_3c4d => 1_000_000_000,
        m => panic!("not a little-endian pcap: {m:x}"),
    };
    let u32at = |o: usize| u64::from(u32::from_le_bytes(b[o..o + 4].try_into().unwrap()));
    let mut records = Vec::new();
    let mut o = 24;
    while o + 16 <= b.len() {
        let ts = u32at(o) * per_s + u32at(o + 4);
        let caplen = u32at(o + 8) as usize;
        records.push((
            ts,
            b[o + 8..o + 16].to_vec(),
            b[o + 16..o + 16 + caplen].to_vec(),
        ));
        o += 16 + caplen;
    }
    Pcap {
        header: b[..24].to_vec(),
        records,
        per_s,
    }
}

fn write_pcap(p: &Pcap, path: &Path) {
    let mut out = p.header.clone();
    for (ts, tail, data) in &p.records {
        out.extend(((ts / p.per_s) as u32).to_le_bytes());
        out.extend(((ts % p.per_s) as u32).to_le_bytes());
        out.extend(tail);
        out.extend(data);
    }
    std::fs::write(path, out).unwrap();
}

/// The TCP source port of an Ethernet/IPv4 frame.
fn tcp_src_port(frame: &[u8]) -> Option<u16> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[23] != 6 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let o = 14 + ihl;
    Some(u16::from_be_bytes(frame.get(o..o + 2)?.try_into().ok()?))
}

#[test]
fn a_merge_with_a_skewed_clock_keeps_every_exchange_complete() {
    let base = fixture("http-nginx-curl.pcap");
    let want = outcomes(&logs(&base));
    assert_eq!(want.get("complete"), Some(&17));
    let mut p = read_pcap(&base);
    // The server's side was captured by a clock 1 ms behind; merged by timestamp, each
    // response lands before the request it answers.
    let skew = p.per_s / 1000;
    for (ts, _, data) in &mut p.records {
        if tcp_src_port(data) == Some(80) {
            *ts -= skew;
        }
    }
    p.records.sort_by_key(|r| r.0);
    let d = tmp();
    let skewed = d.path().join("skewed.pcap");
    write_pcap(&p, &skewed);
    let ex = logs(&skewed);
    assert_eq!(outcomes(&ex), want);
    // Same requests, same answers as in the original.
    let key = |e: &Value| {
        (
            e["client"]["port"].as_u64(),
            e["depth"].as_u64(),
            e["http"]["uri"].to_string(),
            e["http"]["status_code"].as_u64(),
        )
    };
    let mut a: Vec<_> = logs(&base).iter().map(key).collect();
    let mut b: Vec<_> = ex.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let report = analyze_ok(["report".as_ref(), skewed.as_os_str()]);
    assert!(report.contains("reordered    segments held"), "{report}");
}

#[test]
fn a_file_in_reverse_order_is_read_in_time_order() {
    let base = fixture("http-nginx-curl.pcap");
    let mut p = read_pcap(&base);
    p.records.reverse();
    let d = tmp();
    let reversed = d.path().join("reversed.pcap");
    write_pcap(&p, &reversed);
    assert_eq!(
        analyze_ok(["logs".as_ref(), reversed.as_os_str()]),
        analyze_ok(["logs".as_ref(), base.as_os_str()])
    );
}

/// A TCP conversation between 10.9.0.1:40000 and 10.9.0.2:80 as an Ethernet pcap: handshake,
/// then each `(from_client, bytes)` in segments of at most 1,400 bytes, acknowledged by
/// the next segment the other side sends.
fn tcp_conversation(steps: &[(bool, Vec<u8>)]) -> Vec<u8> {
    fn frame(out: &mut Vec<u8>, ts: u32, c2s: bool, seq: u32, ack: u32, flags: u8, data: &[u8]) {
        let (src, dst, sp, dp) = if c2s {
            ([10, 9, 0, 1], [10, 9, 0, 2], 40000u16, 80u16)
        } else {
            ([10, 9, 0, 2], [10, 9, 0, 1], 80, 40000)
        };
        let f = hostile::tcp(src, sp, dst, dp, seq, ack, flags, data);
        out.extend(ts.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend(f);
    }
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend([2, 0, 4, 0]);
    out.extend([0; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    let mut ts = 1_700_000_000u32;
    frame(&mut out, ts, true, cseq, 0, 0x02, b"");
    frame(&mut out, ts, false, sseq, cseq + 1, 0x12, b"");
    cseq += 1;
    sseq += 1;
    frame(&mut out, ts, true, cseq, sseq, 0x10, b"");
    for (c2s, bytes) in steps {
        for part in bytes.chunks(1400) {
            ts += 1;
            if *c2s {
                frame(&mut out, ts, true, cseq, sseq, 0x18, part);
                cseq += part.len() as u32;
            } else {
                frame(&mut out, ts, false, sseq, cseq, 0x18, part);
                sseq += part.len() as u32;
            }
        }
    }
    frame(&mut out, ts + 1, true, cseq, sseq, 0x11, b"");
    frame(&mut out, ts + 1, false, sseq, cseq + 1, 0x11, b"");
    out
}

#[test]
fn http_pipelined_beyond_the_bound_evicts_the_oldest_and_pairs_the_rest() {
    // 4,200 requests in one burst, then their 4,200 responses: 104 more than the matcher
    // keeps waiting (l7::MAX_PIPELINED).
    let n = 4200;
    let reqs: Vec<u8> = (0..n)
        .flat_map(|i| format!("GET /r{i} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes())
        .collect();
    let resps: Vec<u8> = (0..n)
        .flat_map(|i| {
            let body = format!("r{i}");
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        })
        .collect();
    let d = tmp();
    let f = d.path().join("deep.pcap");
    std::fs::write(&f, tcp_conversation(&[(true, reqs), (false, resps)])).unwrap();
    let ex = logs(&f);
    let o = outcomes(&ex);
    assert_eq!(o.get("complete"), Some(&4096), "{o:?}");
    assert_eq!(o.get("no_response"), Some(&104), "{o:?}");
    assert_eq!(o.get("no_request"), None, "{o:?}");
    // Every complete exchange is its own request's: the response body names the request.
    for e in ex.iter().filter(|e| e["outcome"] == "complete") {
        let uri = e["http"]["uri"].as_str().unwrap();
        assert_eq!(
            e["http"]["response_body_len"].as_u64(),
            Some(uri.len() as u64 - 1),
            "{e:#}"
        );
        assert!(uri[2..].parse::<u64>().unwrap() >= 104, "{e:#}");
    }
    let report = analyze_ok(["report".as_ref(), f.as_os_str()]);
    assert!(
        report.contains("overflow     104 written early (more open than the matcher holds), 104 responses to them dropped"),
        "{report}"
    );
}

/// `pcap` run through the analyzer, grouped by connection (client port), in depth order.
fn by_conn(ex: &[Value]) -> BTreeMap<u64, Vec<&Value>> {
    let mut m: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in ex {
        m.entry(e["client"]["port"].as_u64().unwrap())
            .or_default()
            .push(e);
    }
    for v in m.values_mut() {
        v.sort_by_key(|e| e["depth"].as_u64());
    }
    m
}

#[test]
fn pipelining_1000_deep_pairs_every_http_and_redis_exchange() {
    let ex = logs(&fixture("pipeline-1000.pcap.zst"));
    let truth = tsv("pipeline-1000.truth.tsv");
    let conns = by_conn(&ex);
    // HTTP: one connection, 1,000 exchanges, each with its own request's status.
    let http: Vec<&Vec<String>> = truth.iter().filter(|t| t[0] == "http").collect();
    assert_eq!(http.len(), 1000);
    let hc = conns.values().find(|v| v[0]["protocol"] == "http").unwrap();
    assert_eq!(hc.len(), 1000);
    for (e, t) in hc.iter().zip(&http) {
        assert_eq!(e["outcome"], "complete", "{e:#}");
        assert_eq!(e["depth"].as_u64(), Some(t[1].parse().unwrap()));
        assert_eq!(format!("GET {}", e["http"]["uri"].as_str().unwrap()), t[2]);
        assert_eq!(
            e["http"]["status_code"].as_u64(),
            Some(t[3].parse().unwrap()),
            "{e:#}"
        );
    }
    // RESP: the client's 1,000 commands, each with its own reply.
    let resp: Vec<&Vec<String>> = truth.iter().filter(|t| t[0] == "resp").collect();
    assert_eq!(resp.len(), 1000);
    let rc = conns
        .values()
        .find(|v| v.len() == 1000 && v[0]["protocol"] == "redis")
        .unwrap();
    for (e, t) in rc.iter().zip(&resp) {
        assert_eq!(e["outcome"], "complete", "{e:#}");
        let r = &e["redis"];
        let cmd: Vec<&str> = t[2].split(' ').collect();
        assert_eq!(r["command"], cmd[0]);
        assert_eq!(r["key"], cmd[1]);
        let reply = r["reply_value"].as_str().unwrap_or("-");
        assert_eq!(reply, t[3], "{e:#}");
    }
    // redis-benchmark -P 1000: as many SETs and GETs as it reports, all paired.
    for t in truth.iter().filter(|t| t[0] == "redis-benchmark") {
        let n = ex
            .iter()
            .filter(|e| {
                e["protocol"] == "redis"
                    && e["redis"]["command"]
                        .as_str()
                        .unwrap()
                        .eq_ignore_ascii_case(&t[2])
                    && e["outcome"] == "complete"
                    && e["client"]["port"].as_u64() != rc[0]["client"]["port"].as_u64()
            })
            .count();
        assert_eq!(n.to_string(), t[3], "{}", t[2]);
    }
    let total = outcomes(&ex);
    assert_eq!(total.len(), 1, "{total:?}");
}

#[test]
fn unknown_link_types_are_named_in_warnings_and_the_report() {
    let d = tmp();
    // Link type 147 (LINKTYPE_USER0) and 9999 (unassigned), three and one packets.
    for (name, lt, n) in [("user0.pcap", 147u32, 3), ("other.pcap", 9999, 1)] {
        let mut b = Vec::new();
        b.extend(0xa1b2_c3d4u32.to_le_bytes());
        b.extend(2u16.to_le_bytes());
        b.extend(4u16.to_le_bytes());
        b.extend([0; 8]);
        b.extend(65535u32.to_le_bytes());
        b.extend(lt.to_le_bytes());
        for i in 0..n {
            b.extend((1_700_000_000u32 + i).to_le_bytes());
            b.extend(0u32.to_le_bytes());
            b.extend(20u32.to_le_bytes());
            b.extend(20u32.to_le_bytes());
            b.extend([0x45; 20]);
        }
        std::fs::write(d.path().join(name), b).unwrap();
    }
    let out = analyze(["logs".as_ref(), d.path().as_os_str()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3 packets of link type 147 (LINKTYPE_USER0) not analyzed"),
        "{err}"
    );
    assert!(
        err.contains("1 packets of link type 9999 (unassigned)"),
        "{err}"
    );
    let report = analyze_ok(["report".as_ref(), d.path().as_os_str()]);
    assert!(
        report.contains("link type    147 (LINKTYPE_USER0): 3 packets, not read"),
        "{report}"
    );
}
