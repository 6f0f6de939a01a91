//! Golden tests on the fixtures the project records from real programs, and checks of the
//! analyzer against what those programs saw (the clients' own status codes) and against
//! tshark's dissection of the same capture.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;

const HTTP: &str = "http-nginx-curl.pcap";

#[test]
fn http_nginx_curl_golden_outputs() {
    golden_outputs(HTTP, "http-nginx-curl", &["http"]);
}

/// Every request a client made is there, in the order each connection carried them, with the
/// status code the client received.
#[test]
fn http_nginx_curl_matches_what_the_clients_saw() {
    let tsv = std::fs::read_to_string(fixture("http-nginx-curl.requests.tsv")).unwrap();
    let want: Vec<(String, String, u64)> = tsv
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[1].to_string(), f[2].to_string(), f[3].parse().unwrap())
        })
        .collect();
    let ex = jsonl(&analyze_ok([
        std::ffi::OsStr::new("logs"),
        fixture(HTTP).as_os_str(),
    ]));
    let got: Vec<(String, String, u64)> = ex
        .iter()
        .map(|e| {
            let h = &e["http"];
            (
                h["method"].as_str().unwrap().to_string(),
                h["uri"].as_str().unwrap().to_string(),
                h["status_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    for e in &ex {
        assert_eq!(e["outcome"], "complete", "{e}");
        assert!(e["latency_ns"].as_u64().unwrap() > 0);
        assert!(e["ttfb_ns"].as_u64().is_some());
    }
    // Pipelined and keep-alive requests share their connections, numbered in order.
    let mut by_conn: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for e in &ex {
        by_conn
            .entry(e["uid"].as_str().unwrap())
            .or_default()
            .push(e["depth"].as_u64().unwrap());
    }
    let mut shapes: Vec<Vec<u64>> = by_conn.into_values().collect();
    shapes.sort();
    assert_eq!(shapes.iter().filter(|d| **d == vec![1, 2, 3]).count(), 2);
    assert_eq!(shapes.iter().filter(|d| **d == vec![1]).count(), 11);
    // The PUT with `Expect: 100-continue` got its interim response.
    let put = ex
        .iter()
        .find(|e| e["http"]["uri"] == "/dav/upload.bin" && e["http"]["method"] == "PUT")
        .unwrap();
    assert_eq!(put["http"]["info_code"], 100);
    assert_eq!(put["http"]["request_body_len"], 40000);
    // The chunked upload's body is counted de-chunked.
    let chunked = ex
        .iter()
        .find(|e| e["http"]["uri"] == "/dav/chunked.bin")
        .unwrap();
    assert_eq!(chunked["http"]["request_body_len"], 40000);
    // gzip: nginx compressed the text file on the fly; the decoded length is the file's.
    let gz = ex
        .iter()
        .find(|e| e["http"]["uri"] == "/text.txt" && e["http"]["method"] == "GET")
        .unwrap();
    let text_len: u64 = (0..3000)
        .map(|i| format!("line {i} of a text file that nginx gzips\n").len() as u64)
        .sum();
    assert_eq!(gz["http"]["response_body_len"], text_len);
}

/// tshark, dissecting the same capture, sees the same requests and responses on every
/// connection — except that tshark expects a body after a response to HEAD that carries a
/// Content-Length, and so swallows the responses pipelined after it. On such a connection
/// tshark's responses must be an in-order prefix of ours (ours match what the client
/// received: see the test above).
#[test]
fn http_nginx_curl_agrees_with_tshark() {
    require("tshark");
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(fixture(HTTP))
        .args([
            "-Y",
            "http",
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
        ])
        .args([
            "-e",
            "http.request.method",
            "-e",
            "http.request.uri",
            "-e",
            "http.response.code",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    type Conn = (Vec<(String, String)>, Vec<u64>);
    let mut tshark: BTreeMap<u64, Conn> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (sp, dp): (u64, u64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let c = tshark.entry(if dp == 80 { sp } else { dp }).or_default();
        // Several messages in one segment (pipelining) come comma-separated.
        if !f[2].is_empty() {
            c.0.extend(
                f[2].split(',')
                    .zip(f[3].split(','))
                    .map(|(m, u)| (m.to_string(), u.to_string())),
            );
        }
        for code in f[4].split(',').filter(|c| !c.is_empty()) {
            let code: u64 = code.parse().unwrap();
            // tshark lists interim (1xx) responses as well.
            if code >= 200 {
                c.1.push(code);
            }
        }
    }
    let mut ours: BTreeMap<u64, Conn> = BTreeMap::new();
    for e in jsonl(&analyze_ok([
        std::ffi::OsStr::new("logs"),
        fixture(HTTP).as_os_str(),
    ])) {
        let c = ours
            .entry(e["client"]["port"].as_u64().unwrap())
            .or_default();
        c.0.push((
            e["http"]["method"].as_str().unwrap().into(),
            e["http"]["uri"].as_str().unwrap().into(),
        ));
        c.1.push(e["http"]["status_code"].as_u64().unwrap());
    }
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        tshark.keys().collect::<Vec<_>>()
    );
    let mut head_conns = 0;
    for (port, (t_req, t_resp)) in &tshark {
        let (o_req, o_resp) = &ours[port];
        assert_eq!(o_req, t_req, "requests on client port {port}");
        let pipelined_head =
            o_req.len() > 1 && o_req[..o_req.len() - 1].iter().any(|(m, _)| m == "HEAD");
        if pipelined_head {
            head_conns += 1;
            assert!(
                o_resp.starts_with(t_resp),
                "port {port}: tshark {t_resp:?} not a prefix of {o_resp:?}"
            );
        } else {
            assert_eq!(o_resp, t_resp, "responses on client port {port}");
        }
    }
    assert_eq!(head_conns, 1);
}

const RECORDED: &str = "recorded-nginx-curl.pcapng.zst";

#[test]
fn recorded_nginx_curl_golden_outputs() {
    golden_outputs(RECORDED, "recorded-nginx-curl", &[]);
}

/// The archive juno-record wrote of 10 s of curl → nginx: every request curl made is there,
/// in order, with the status curl received — seen as packets on the veth, in curl's sockets
/// and in nginx's sockets.
#[test]
fn recorded_nginx_curl_lists_every_request_from_every_vantage_point() {
    let tsv = std::fs::read_to_string(fixture("recorded-nginx-curl.requests.tsv")).unwrap();
    let want: Vec<(String, String, u64)> = tsv
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].parse().unwrap())
        })
        .collect();
    assert!(want.len() > 50, "{} requests", want.len());
    let ex = jsonl(&analyze_ok([
        std::ffi::OsStr::new("logs"),
        fixture(RECORDED).as_os_str(),
    ]));
    // Request start times are RFC 3339 with nanoseconds: they sort as strings.
    type Request = (String, String, u64);
    let mut by_vantage: BTreeMap<String, Vec<(String, Request)>> = BTreeMap::new();
    for e in &ex {
        let v = &e["vantage"];
        let key = match v["kind"].as_str().unwrap() {
            "packets" => format!("packets:{}", v["iface"].as_str().unwrap()),
            _ => format!("socket:{}", v["comm"].as_str().unwrap()),
        };
        let h = &e["http"];
        by_vantage.entry(key).or_default().push((
            e["request"]["start"].as_str().unwrap().to_string(),
            (
                h["method"].as_str().unwrap().to_string(),
                h["uri"].as_str().unwrap().to_string(),
                h["status_code"].as_u64().unwrap(),
            ),
        ));
        assert_eq!(e["outcome"], "complete", "{e}");
    }
    assert_eq!(
        by_vantage.keys().collect::<Vec<_>>(),
        ["packets:jfr-h", "socket:curl", "socket:nginx"]
    );
    for (k, mut v) in by_vantage {
        v.sort();
        let got: Vec<_> = v.into_iter().map(|(_, x)| x).collect();
        assert_eq!(got, want, "{k}");
    }
}

/// Every file an analysis wrote into `dir`, by name; the run summary without the figures that
/// measure the machine (peak resident memory, wall times).
fn outputs(dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let mut text = std::fs::read_to_string(&p).unwrap();
        if name == "summary.json" {
            text = without_machine_figures(text.as_bytes());
        }
        m.insert(name, text);
    }
    m
}

/// A JSON document without the figures that measure the machine, not the analysis: every
/// `peak_rss_bytes` and `wall_time_us`.
fn without_machine_figures(json: &[u8]) -> String {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("peak_rss_bytes");
                m.remove("wall_time_us");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(json).unwrap();
    strip(&mut v);
    v.to_string()
}

/// The results must not depend on the thread count (issue 14): on every capture in
/// fixtures/, Zeek logs, JSON lines, the graph and the report summary are byte for byte the
/// same with 1, 2 and 8 threads.
#[test]
fn every_fixture_reads_the_same_with_1_2_and_8_threads() {
    let mut captures: Vec<std::path::PathBuf> = std::fs::read_dir(root().join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            [".pcap", ".pcap.zst", ".pcapng", ".pcapng.zst"]
                .iter()
                .any(|x| n.ends_with(x))
        })
        .collect();
    captures.sort();
    assert!(captures.len() >= 10, "{captures:?}");
    let d = tmp();
    for f in &captures {
        let run = |threads: &str| {
            let zeek = d.path().join(format!("zeek-{threads}"));
            let json = d.path().join(format!("json-{threads}"));
            for dir in [&zeek, &json] {
                let _ = std::fs::remove_dir_all(dir);
            }
            let t = std::ffi::OsStr::new(threads);
            let z = analyze([
                "--threads".as_ref(),
                t,
                "logs".as_ref(),
                f.as_os_str(),
                "--format".as_ref(),
                "zeek".as_ref(),
                "--out-dir".as_ref(),
                zeek.as_os_str(),
            ]);
            let j = analyze([
                "--threads".as_ref(),
                t,
                "logs".as_ref(),
                f.as_os_str(),
                "--out-dir".as_ref(),
                json.as_os_str(),
            ]);
            let g = analyze([
                "--threads".as_ref(),
                t,
                "graph".as_ref(),
                f.as_os_str(),
                "--format".as_ref(),
                "json".as_ref(),
            ]);
            let r = analyze([
                "--threads".as_ref(),
                t,
                "report".as_ref(),
                f.as_os_str(),
                "--format".as_ref(),
                "json".as_ref(),
            ]);
            let status = [&z, &j, &g, &r].map(|o| o.status.code());
            (
                status,
                outputs(&zeek),
                outputs(&json),
                without_machine_figures(&g.stdout),
                without_machine_figures(&r.stdout),
            )
        };
        let one = run("1");
        assert!(
            one.0.iter().all(|s| matches!(s, Some(0 | 2))),
            "{}: {:?}",
            f.display(),
            one.0
        );
        assert!(
            one.1.keys().any(|k| k.ends_with(".log")),
            "{}: no Zeek log",
            f.display()
        );
        for threads in ["2", "8"] {
            let other = run(threads);
            assert!(
                one.0 == other.0,
                "{}: exit codes with {threads} threads",
                f.display()
            );
            for (name, (a, b)) in [
                ("zeek logs", (&one.1, &other.1)),
                ("json lines", (&one.2, &other.2)),
            ] {
                assert_eq!(
                    a.keys().collect::<Vec<_>>(),
                    b.keys().collect::<Vec<_>>(),
                    "{}: {name}",
                    f.display()
                );
                for (k, v) in a {
                    assert!(
                        *v == b[k],
                        "{}: {name}: {k} differs with {threads} threads",
                        f.display()
                    );
                }
            }
            assert!(
                one.3 == other.3,
                "{}: graph differs with {threads} threads",
                f.display()
            );
            assert!(
                one.4 == other.4,
                "{}: report differs with {threads} threads",
                f.display()
            );
        }
    }
}
