//! `juno-analyze report -o report.html` on the bundled fixtures: one self-contained page that
//! a real browser (headless Chromium, Debian's package) opens and renders with every section,
//! and whose numbers agree with the JSON lines of the same inputs.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::process::Command;

use common::*;

const SECTIONS: &[(&str, &str)] = &[
    ("capture", "Capture"),
    ("graph", "Service graph"),
    ("edges", "Edges: rate, errors, duration"),
    ("latency", "Latency per edge"),
    ("endpoints", "Top endpoints"),
    ("slowest", "Slowest exchanges"),
    ("failing", "Failing exchanges"),
    ("protocols", "Protocol mix"),
    ("details", "Details"),
];

fn report(inputs: &[&str], out: &std::path::Path) -> String {
    let mut args: Vec<std::ffi::OsString> = vec!["report".into()];
    args.extend(inputs.iter().map(|f| fixture(f).into_os_string()));
    args.push("-o".into());
    args.push(out.into());
    analyze_ok(&args);
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn the_page_is_self_contained_and_agrees_with_the_logs() {
    let dir = tmp();
    let inputs = [
        "http-nginx-curl.pcap",
        "dns-dig.pcap",
        "recorded-nginx-curl.pcapng.zst",
    ];
    let html = report(&inputs, &dir.path().join("report.html"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    for (id, title) in SECTIONS {
        assert!(
            html.contains(&format!("<section id=\"{id}\"><h2>{title}</h2>")),
            "section {id} missing"
        );
    }
    // Nothing external: no scripts, links, or remote references.
    for bad in [
        "<script",
        "<link",
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
    ] {
        assert!(!html.contains(bad), "external reference {bad}");
    }
    // The graph is inline SVG; so is one latency chart per edge with latencies.
    assert!(html.contains("<div class=\"graph\"><svg"));
    // Edge rows agree with the graph of the same inputs.
    let mut args: Vec<std::ffi::OsString> = vec!["graph".into()];
    args.extend(inputs.iter().map(|f| fixture(f).into_os_string()));
    args.extend(["--format".into(), "json".into()]);
    let g: serde_json::Value = serde_json::from_str(&analyze_ok(&args)).unwrap();
    let edges = g["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 3, "{g}");
    assert_eq!(html.matches("<svg class=\"hist\"").count(), edges.len());
    for e in edges {
        let row = format!(
            "<td>{}</td><td class=\"n\">{}</td>",
            e["protocol"].as_str().unwrap(),
            e["requests"]
        );
        assert!(html.contains(&row), "no edge row {row}");
    }
    // Failing exchanges: the DNS fixture's NXDOMAIN answers, counted as the logs count them.
    let logs = jsonl(&analyze_ok([
        std::ffi::OsStr::new("logs"),
        fixture("dns-dig.pcap").as_os_str(),
    ]));
    let nx = logs
        .iter()
        .filter(|e| e["dns"]["rcode_name"] == "NXDOMAIN")
        .count();
    assert!(nx > 0);
    assert!(html.contains(&format!("<p>{nx} in all;")), "failing count");
    assert!(html.contains("NXDOMAIN"));
}

#[test]
fn headless_chromium_renders_every_section() {
    require("chromium");
    let dir = tmp();
    let page = dir.path().join("report.html");
    report(&["recorded-nginx-curl.pcapng.zst", "dns-dig.pcap"], &page);
    let url = format!("file://{}", page.display());
    let browser = |extra: &[&str]| {
        let out = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    // The DOM the browser built: every section, the graph and charts as SVG elements.
    let dom = String::from_utf8(browser(&["--dump-dom"]).stdout).unwrap();
    for (id, title) in SECTIONS {
        assert!(dom.contains(&format!("id=\"{id}\"")), "{id} not in the DOM");
        assert!(dom.contains(title));
    }
    assert!(dom.matches("<svg").count() >= 3);
    // A screenshot, kept for a person to look at.
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    browser(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,2400",
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 20_000, "a blank page? {} bytes", png.len());
}
