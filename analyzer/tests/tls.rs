//! TLS handshakes from packets against references on real traces: Zeek's `ssl.log` baselines
//! for its own TLS traces (fixtures/zeek-tls), FoxIO's JA4 test outputs for their traces
//! (fixtures/ja4), and tshark's dissection of real programs' handshakes (fixtures/tls-nginx).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::BTreeMap;

use common::*;

/// Run with `--ignore-checksums`, as Zeek's TLS tests run with `-C` (ecdsa-cert.pcap's client
/// packets have IPv4 header checksums of 0: captured on a host that offloads them).
fn ssl_log(trace: &std::path::Path) -> Vec<BTreeMap<String, String>> {
    let d = tmp();
    analyze_ok([
        "logs".as_ref(),
        trace.as_os_str(),
        "--format".as_ref(),
        "zeek".as_ref(),
        "--out-dir".as_ref(),
        d.path().as_os_str(),
        "--ignore-checksums".as_ref(),
    ]);
    zeek_rows(&std::fs::read_to_string(d.path().join("ssl.log")).unwrap_or_default())
}

/// Every column Zeek's baseline has but `ts`, `uid` (Zeek's own numbering) and
/// `sni_matches_cert` (needs X.509 name checks: always unset here, docs/tls.md).
const COMPARED: &[&str] = &[
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "version",
    "cipher",
    "curve",
    "server_name",
    "resumed",
    "last_alert",
    "next_protocol",
    "established",
    "ssl_history",
    "cert_chain_fps",
    "client_cert_chain_fps",
];

#[test]
fn every_ssl_log_row_of_zeeks_tls_traces_is_reproduced() {
    let dir = fixture("zeek-tls");
    let mut traces: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".pcap") || n.ends_with(".pcap.gz")
        })
        .collect();
    traces.sort();
    assert!(traces.len() >= 21, "{} traces", traces.len());
    let mut rows = 0;
    for t in &traces {
        let baseline = format!("{}.ssl.log", t.display());
        let want = zeek_rows(&std::fs::read_to_string(baseline).unwrap());
        let got = ssl_log(t);
        let key = |r: &BTreeMap<String, String>| -> Vec<String> {
            COMPARED
                .iter()
                .map(|k| r.get(*k).cloned().unwrap_or_default())
                .collect()
        };
        let mut w: Vec<_> = want.iter().map(key).collect();
        let mut g: Vec<_> = got.iter().map(key).collect();
        w.sort();
        g.sort();
        assert_eq!(g, w, "{}: columns {COMPARED:?}", t.display());
        rows += w.len();
        for r in &got {
            assert_eq!(r["sni_matches_cert"], "-");
        }
    }
    assert!(rows >= 26, "{rows} rows compared");
}

#[test]
fn ja4_of_foxios_test_traces_is_their_published_fingerprint() {
    let expected = std::fs::read_to_string(fixture("ja4/expected.tsv")).unwrap();
    let mut checked = 0;
    for line in expected.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (trace, port, ja4) = (f[0], f[2], f[3]);
        // FoxIO's tool reads packets whatever their checksums (one ClientHello here has an
        // IPv4 header checksum of 0).
        let out = analyze_ok([
            std::ffi::OsStr::new("logs"),
            fixture(&format!("ja4/{trace}")).as_os_str(),
            std::ffi::OsStr::new("--ignore-checksums"),
        ]);
        let rows = jsonl(&out);
        let row = rows
            .iter()
            .find(|r| r["protocol"] == "tls" && r["client"]["port"].as_u64() == port.parse().ok())
            .unwrap_or_else(|| panic!("{trace}: no TLS row for client port {port}"));
        assert_eq!(row["tls"]["ja4"], ja4, "{trace}");
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// The fields of every packet `filter` selects in tshark's PDML, per packet: the `show`
/// attribute of each field named in `names`, and its `showname` (for names).
fn tshark_pdml(
    trace: &std::path::Path,
    filter: &str,
    names: &[&str],
) -> Vec<BTreeMap<String, (String, String)>> {
    require("tshark");
    let out = std::process::Command::new("tshark")
        .args([
            "-r".as_ref(),
            trace.as_os_str(),
            "-Y".as_ref(),
            filter.as_ref(),
            "-T".as_ref(),
            "pdml".as_ref(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let attr = |line: &str, a: &str| -> String {
        let k = format!(" {a}=\"");
        line.find(&k)
            .map(|i| {
                let rest = &line[i + k.len()..];
                rest[..rest.find('"').unwrap()].to_string()
            })
            .unwrap_or_default()
    };
    text.split("<packet>")
        .skip(1)
        .map(|p| {
            let mut m = BTreeMap::new();
            for line in p.lines() {
                let name = attr(line, "name");
                if names.contains(&name.as_str()) && !m.contains_key(&name) {
                    m.insert(name, (attr(line, "show"), attr(line, "showname")));
                }
            }
            m
        })
        .collect()
}

/// tshark's ClientHellos, one line per packet: client port, SNI, version, supported
/// versions, ciphers, extension types, signature algorithms, ALPN protocols, server port.
fn tshark_client_hellos(trace: &std::path::Path) -> Vec<Vec<String>> {
    require("tshark");
    let out = std::process::Command::new("tshark")
        .args(["-r".as_ref(), trace.as_os_str()])
        .args([
            "-Y",
            "tls.handshake.type == 1",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "aggregator=,",
        ])
        .args([
            "-e",
            "tcp.srcport",
            "-e",
            "tls.handshake.extensions_server_name",
        ])
        .args([
            "-e",
            "tls.handshake.version",
            "-e",
            "tls.handshake.extensions.supported_version",
        ])
        .args([
            "-e",
            "tls.handshake.ciphersuite",
            "-e",
            "tls.handshake.extension.type",
        ])
        .args([
            "-e",
            "tls.handshake.sig_hash_alg",
            "-e",
            "tls.handshake.extensions_alpn_str",
            "-e",
            "tcp.dstport",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

fn hex_list(s: &str) -> Vec<u16> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| u16::from_str_radix(x.trim_start_matches("0x"), 16).unwrap())
        .collect()
}

/// JA4 computed from tshark's fields, following FoxIO's specification.
fn ja4_from_tshark(f: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let h12 = |s: &str| -> String {
        if s.is_empty() {
            return "000000000000".into();
        }
        Sha256::digest(s.as_bytes())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let exts: Vec<u16> = f[5]
        .split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap())
        .filter(|x| !grease(*x))
        .collect();
    let version = if exts.contains(&43) {
        hex_list(&f[3])
            .into_iter()
            .filter(|v| !grease(*v))
            .max()
            .unwrap()
    } else {
        hex_list(&f[2])[0]
    };
    let v = match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        _ => "00",
    };
    let mut ciphers: Vec<String> = hex_list(&f[4])
        .into_iter()
        .filter(|c| !grease(*c))
        .map(|c| format!("{c:04x}"))
        .collect();
    let alpn = f[7].split(',').next().unwrap_or("");
    let (a0, a1) = match (alpn.chars().next(), alpn.chars().last()) {
        (None, _) => ('0', '0'),
        (Some(a), Some(b)) if alpn.chars().count() > 1 => (a, b),
        (Some(a), _) => (a, '0'),
    };
    let head = format!(
        "t{v}{}{:02}{:02}{a0}{a1}",
        if exts.contains(&0) { 'd' } else { 'i' },
        ciphers.len().min(99),
        exts.len().min(99)
    );
    ciphers.sort();
    let mut e: Vec<u16> = exts.into_iter().filter(|x| *x != 0 && *x != 16).collect();
    e.sort();
    let mut c = e
        .iter()
        .map(|x| format!("{x:04x}"))
        .collect::<Vec<_>>()
        .join(",");
    let sigs: Vec<String> = hex_list(&f[6])
        .into_iter()
        .filter(|s| !grease(*s))
        .map(|s| format!("{s:04x}"))
        .collect();
    if !sigs.is_empty() {
        c = format!("{c}_{}", sigs.join(","));
    }
    format!("{head}_{}_{}", h12(&ciphers.join(",")), h12(&c))
}

fn version_name(hex: &str) -> String {
    match hex {
        "0x0303" => "TLSv12".into(),
        "0x0304" => "TLSv13".into(),
        "0x0302" => "TLSv11".into(),
        "0x0301" => "TLSv10".into(),
        other => format!("unexpected {other}"),
    }
}

/// A connection's key: client port and server port (from our rows' JSON numbers, tshark's
/// fields or the clients' report alike).
fn conn_key(client: impl std::fmt::Display, server: impl std::fmt::Display) -> String {
    format!("{client}:{server}")
}

fn jstr(v: &serde_json::Value) -> String {
    v.as_str().map(String::from).unwrap_or_else(|| "-".into())
}

/// Real clients (curl HTTP/1.1 and HTTP/2, python3's ssl, openssl s_client refused, failing
/// verification, resuming) against nginx: every handshake the analyzer logs agrees with
/// tshark's dissection — SNI, version, cipher, ALPN, JA4, alerts — and with what the clients
/// reported (ALPN, versions, ciphers, resumption, the certificate's fingerprint).
///
/// The stored capture by default; `JUNO_TLS_NGINX_PCAP` names a fresh one (with its
/// `.truth.tsv`), which `scripts/test-privileged.sh` records with `fixtures/make-tls-nginx.sh`.
#[test]
fn tls_nginx_agrees_with_tshark_and_the_clients() {
    let trace = std::env::var_os("JUNO_TLS_NGINX_PCAP")
        .map_or_else(|| fixture("tls-nginx.pcap"), std::path::PathBuf::from);
    let truth_file = trace.with_extension("truth.tsv");
    let rows = jsonl(&analyze_ok([
        std::ffi::OsStr::new("logs"),
        trace.as_os_str(),
    ]));
    // Keyed by client and server port: a client port may be chosen again for another server
    // port (the kernel picks ephemeral ports per destination).
    let tls_rows: Vec<&serde_json::Value> =
        rows.iter().filter(|r| r["protocol"] == "tls").collect();
    let ours: BTreeMap<String, &serde_json::Value> = tls_rows
        .iter()
        .map(|r| {
            (
                conn_key(&r["client"]["port"], &r["server"]["port"]),
                &r["tls"],
            )
        })
        .collect();
    let truth: Vec<Vec<String>> = std::fs::read_to_string(&truth_file)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    let hellos = tshark_client_hellos(&trace);
    // On a mismatch, say what each side saw: the clients, tshark's ClientHellos, our rows.
    let explain = || {
        let seen: Vec<String> = tls_rows
            .iter()
            .map(|r| {
                format!(
                    "{} established={} last_alert={}",
                    conn_key(&r["client"]["port"], &r["server"]["port"]),
                    r["tls"]["established"],
                    r["tls"]["last_alert"]
                )
            })
            .collect();
        let theirs: Vec<String> = hellos.iter().map(|h| conn_key(&h[0], &h[8])).collect();
        format!(
            "clients (label, port):\n  {}\ntshark's ClientHellos (client:server port): {}\nours ({} TLS rows):\n  {}",
            truth
                .iter()
                .map(|t| format!("{} {}", t[0], t[1]))
                .collect::<Vec<_>>()
                .join("\n  "),
            theirs.join(" "),
            seen.len(),
            seen.join("\n  ")
        )
    };
    assert_eq!(
        (tls_rows.len(), ours.len()),
        (truth.len(), truth.len()),
        "one TLS row per client connection\n{}",
        explain()
    );

    // ClientHellos: SNI and JA4.
    assert_eq!(hellos.len(), truth.len(), "{}", explain());
    for h in &hellos {
        let t = ours[&conn_key(&h[0], &h[8])];
        assert_eq!(jstr(&t["server_name"]), h[1], "SNI of {}", h[0]);
        assert_eq!(jstr(&t["ja4"]), ja4_from_tshark(h), "JA4 of {}", h[0]);
        let offered: Vec<String> = h[7]
            .split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect();
        let ours_offered: Vec<String> = t["alpn_offered"]
            .as_array()
            .map(|a| a.iter().map(jstr).collect())
            .unwrap_or_default();
        assert_eq!(ours_offered, offered, "ALPN offered by {}", h[0]);
    }

    // ServerHellos: version, cipher, ALPN chosen (plaintext only before TLS 1.3).
    let shs = tshark_pdml(
        &trace,
        "tls.handshake.type == 2",
        &[
            "tcp.srcport",
            "tcp.dstport",
            "tls.handshake.version",
            "tls.handshake.ciphersuite",
            "tls.handshake.extensions.supported_version",
            "tls.handshake.extensions_alpn_str",
        ],
    );
    assert_eq!(
        shs.len(),
        truth.len() - 1,
        "one client was refused before a ServerHello"
    );
    for s in &shs {
        let port = conn_key(&s["tcp.dstport"].0, &s["tcp.srcport"].0);
        let t = ours[&port];
        let v = s
            .get("tls.handshake.extensions.supported_version")
            .unwrap_or(&s["tls.handshake.version"]);
        assert_eq!(jstr(&t["version"]), version_name(&v.0), "version of {port}");
        let cipher = s["tls.handshake.ciphersuite"]
            .1
            .split(' ')
            .nth(2)
            .unwrap()
            .to_string();
        assert_eq!(jstr(&t["cipher"]), cipher, "cipher of {port}");
        let alpn = s
            .get("tls.handshake.extensions_alpn_str")
            .map_or("-".to_string(), |a| a.0.clone());
        assert_eq!(jstr(&t["next_protocol"]), alpn, "ALPN chosen for {port}");
    }

    // Alerts in the clear: tshark's description, in Zeek's spelling.
    let alerts = tshark_pdml(
        &trace,
        "tls.alert_message.desc",
        &["tcp.srcport", "tcp.dstport", "tls.alert_message.desc"],
    );
    assert_eq!(alerts.len(), 2);
    for a in &alerts {
        let desc = &a["tls.alert_message.desc"].1;
        let name = desc["Description: ".len()..desc.rfind(" (").unwrap()]
            .to_lowercase()
            .replace(' ', "_");
        let (src, dst) = (&a["tcp.srcport"].0, &a["tcp.dstport"].0);
        let t = ours
            .get(&conn_key(src, dst))
            .or_else(|| ours.get(&conn_key(dst, src)))
            .unwrap();
        assert_eq!(jstr(&t["last_alert"]), name);
        assert_eq!(t["established"], false);
    }

    // What the clients reported.
    let by_label = |l: &str| truth.iter().find(|t| t[0] == l).unwrap();
    // The clients that report their port (curl, python) all talk to port 443.
    for t in truth.iter().filter(|t| t[1] != "-") {
        let o = ours[&conn_key(&t[1], 443)];
        assert_eq!(o["established"], true, "{}", t[0]);
        if o["version"] == "TLSv12" {
            assert_eq!(jstr(&o["next_protocol"]), t[4], "{}", t[0]);
            // The certificate in the clear: Zeek's fingerprint is the certificate's SHA-256.
            assert_eq!(o["cert_chain_fps"][0], t[6].as_str(), "{}", t[0]);
        } else {
            assert_eq!(
                jstr(&o["next_protocol"]),
                "-",
                "{}: ALPN is encrypted in TLS 1.3",
                t[0]
            );
            assert!(o["cert_chain_fps"].is_null(), "{}", t[0]);
        }
        if t[2] != "-" {
            assert_eq!(jstr(&o["version"]), t[2].replace('.', ""), "{}", t[0]);
        }
        if t[3].starts_with("TLS_") {
            assert_eq!(jstr(&o["cipher"]), t[3], "{}", t[0]);
        }
    }
    let resumed_clients = truth.iter().filter(|t| t[5] == "resumed").count();
    let resumed_rows = ours.values().filter(|o| o["resumed"] == true).count();
    assert_eq!((resumed_clients, resumed_rows), (2, 2));
    assert_eq!(by_label("openssl-tls12-verify-fails")[5], "verify failed");
    assert_eq!(
        by_label("openssl-tls12-refused")[5],
        "alert protocol version"
    );
    let refused: Vec<_> = ours
        .values()
        .filter(|o| o["last_alert"] == "protocol_version")
        .collect();
    assert_eq!(refused.len(), 1);
    assert!(refused[0]["version"].is_null());
}
