//! `juno-analyze graph` on the bundled fixtures: edges, counts and errors agree with what the
//! clients that made the traffic reported; every output format renders the same graph.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use common::*;
use serde_json::Value;

fn graph(input: &str, args: &[&str]) -> String {
    let f = fixture(input);
    let mut a: Vec<&std::ffi::OsStr> = vec!["graph".as_ref(), f.as_os_str()];
    a.extend(args.iter().map(std::ffi::OsStr::new));
    analyze_ok(a)
}

fn json(input: &str, args: &[&str]) -> Value {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    serde_json::from_str(&graph(input, &a)).unwrap()
}

#[test]
fn dns_edge_counts_what_dig_asked_and_what_failed() {
    // Ground truth: one row per exchange dig reported; status NXDOMAIN is a failure, `-` got
    // no answer.
    let tsv = std::fs::read_to_string(fixture("dns-dig.answers.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = tsv.lines().map(|l| l.split('\t').collect()).collect();
    let nx = rows.iter().filter(|r| r[5] == "NXDOMAIN").count() as u64;
    let unanswered = rows.iter().filter(|r| r[5] == "-").count() as u64;
    let g = json("dns-dig.pcap", &["--group-by", "ip"]);
    let nodes = g["nodes"].as_array().unwrap();
    let edges = g["edges"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(edges.len(), 1, "{g}");
    let e = &edges[0];
    assert_eq!(
        nodes[e["from"].as_u64().unwrap() as usize]["name"],
        "10.204.0.1"
    );
    assert_eq!(
        nodes[e["to"].as_u64().unwrap() as usize]["name"],
        "10.204.0.2"
    );
    assert_eq!(e["protocol"], "dns");
    assert_eq!(e["requests"].as_u64().unwrap(), rows.len() as u64);
    assert_eq!(e["errors"].as_u64().unwrap(), nx);
    assert_eq!(e["unanswered"].as_u64().unwrap(), unanswered);
    let p50 = e["p50_ns"].as_u64().unwrap();
    let p99 = e["p99_ns"].as_u64().unwrap();
    assert!(p50 > 0 && p50 <= p99);
    assert!(e["bytes_to_server"].as_u64().unwrap() > 0);
}

#[test]
fn a_connection_seen_from_three_vantage_points_is_counted_once() {
    // The recorder fixture holds every request three times: on the veth, in curl's sockets
    // and in nginx's sockets.
    let want = std::fs::read_to_string(fixture("recorded-nginx-curl.requests.tsv"))
        .unwrap()
        .lines()
        .count() as u64;
    let missing = std::fs::read_to_string(fixture("recorded-nginx-curl.requests.tsv"))
        .unwrap()
        .lines()
        .filter(|l| l.ends_with("\t404"))
        .count() as u64;
    let g = json("recorded-nginx-curl.pcapng.zst", &[]);
    let edges = g["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{g}");
    assert_eq!(edges[0]["requests"].as_u64().unwrap(), want);
    assert_eq!(edges[0]["connections"].as_u64().unwrap(), want);
    // 404 is not a failure for HTTP's summary (a client error); 5xx would be.
    assert_eq!(edges[0]["errors"], 0, "{missing} 404s");
    // Filters: another protocol or namespace leaves nothing.
    let none = json("recorded-nginx-curl.pcapng.zst", &["--protocol", "dns"]);
    assert!(none["edges"].as_array().unwrap().is_empty());
    let none = json("recorded-nginx-curl.pcapng.zst", &["--namespace", "shop"]);
    assert!(none["edges"].as_array().unwrap().is_empty());
}

#[test]
fn dot_mermaid_and_svg_draw_the_same_nodes_and_edges() {
    let f = "http-nginx-curl.pcap";
    let g = json(f, &[]);
    let labels: Vec<&str> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["label"].as_str().unwrap())
        .collect();
    let requests = g["edges"][0]["requests"].as_u64().unwrap();
    let edge_label = format!("http {requests} req");

    let dot = graph(f, &["--format", "dot"]);
    assert!(dot.starts_with("digraph juno {"));
    assert_eq!(
        dot.matches(" -> ").count(),
        g["edges"].as_array().unwrap().len()
    );
    let mermaid = graph(f, &["--format", "mermaid"]);
    assert!(mermaid.starts_with("flowchart LR"));
    assert_eq!(
        mermaid.matches("-->").count(),
        g["edges"].as_array().unwrap().len()
    );
    for text in [&dot, &mermaid] {
        for l in &labels {
            assert!(text.contains(l), "{l} missing from\n{text}");
        }
        assert!(
            text.contains(&edge_label),
            "{edge_label} missing from\n{text}"
        );
    }

    // SVG laid out in-process (no Graphviz needed): well-formed, with every label.
    let svg = juno_analyze::sink::graph::svg_builtin(&dot).unwrap();
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<svg").count(), 1);
    for l in labels.iter().copied().chain([edge_label.as_str()]) {
        assert!(svg.contains(l), "{l} missing from the SVG");
    }
    // What the command writes (Graphviz when installed, else the same in-process layout).
    let out = tmp();
    let p = out.path().join("g.svg");
    graph(f, &["--format", "svg", "-o", p.to_str().unwrap()]);
    let written = std::fs::read_to_string(&p).unwrap();
    assert!(written.contains("<svg"));
    for l in &labels {
        assert!(written.contains(l));
    }
}

#[test]
fn tls_server_without_a_pod_is_named_by_its_sni() {
    // Plain pcap: nothing names nginx's address, so the TLS edge goes to the name the
    // clients asked for; its requests, failures (the refused and the rejected handshake) and
    // bytes are on that one edge. With `--group-by ip` the address stays.
    let truth = std::fs::read_to_string(fixture("tls-nginx.truth.tsv")).unwrap();
    let conns = truth.lines().count() as u64;
    let g = json("tls-nginx.pcap", &[]);
    let nodes = g["nodes"].as_array().unwrap();
    let edges = g["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{g}");
    let e = &edges[0];
    let to = &nodes[e["to"].as_u64().unwrap() as usize];
    assert_eq!(to["kind"], "name");
    assert_eq!(to["name"], "jtls.example.test");
    assert_eq!(e["protocol"], "tls");
    assert_eq!(e["requests"].as_u64().unwrap(), conns);
    assert_eq!(e["connections"].as_u64().unwrap(), conns);
    assert_eq!(e["errors"].as_u64().unwrap(), 2);
    assert!(e["bytes_to_client"].as_u64().unwrap() > 0);
    let by_ip = json("tls-nginx.pcap", &["--group-by", "ip"]);
    let names: Vec<&str> = by_ip["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["10.231.7.1", "10.231.7.2"]);
}
