//! Secrets: `--redact` on ordinary captures (same rules as juno-record), `[redacted]` in the
//! logs, and archives encrypted at rest read with `--identity`.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// An Ethernet/IPv4/TCP packet.
fn tcp(from_client: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sport, dport) = if from_client {
        ([10, 0, 0, 1], [10, 0, 0, 2], 40000u16, 80u16)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000)
    };
    hostile::tcp(src, sport, dst, dport, seq, ack, flags, payload)
}

/// A pcap of one HTTP/1.1 exchange whose Authorization header is split across two segments,
/// with a URL token, a cookie and a Set-Cookie.
fn secret_pcap(dir: &Path) -> PathBuf {
    let req1 = b"GET /orders?id=7&token=TOK3N-VALUE&page=2 HTTP/1.1\r\nHost: shop\r\nAuthoriz";
    let req2 = b"ation: Bearer SPLIT-SECRET\r\nCookie: sid=COOKIE-VALUE\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=SETCOOKIE-VALUE\r\nContent-Length: 2\r\n\r\nok";
    let (c, s) = (1000u32, 5000u32);
    let r1 = req1.len() as u32;
    let r2 = req2.len() as u32;
    let packets = [
        tcp(true, c, 0, 0x02, b""),
        tcp(false, s, c + 1, 0x12, b""),
        tcp(true, c + 1, s + 1, 0x10, b""),
        tcp(true, c + 1, s + 1, 0x18, req1),
        tcp(true, c + 1 + r1, s + 1, 0x18, req2),
        tcp(false, s + 1, c + 1 + r1 + r2, 0x18, resp),
        tcp(true, c + 1 + r1 + r2, s + 1 + resp.len() as u32, 0x11, b""),
        tcp(false, s + 1 + resp.len() as u32, c + 2 + r1 + r2, 0x11, b""),
    ];
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        out.extend(1_700_000_000u32.to_le_bytes());
        out.extend((i as u32 * 1000).to_le_bytes());
        out.extend((p.len() as u32).to_le_bytes());
        out.extend((p.len() as u32).to_le_bytes());
        out.extend(p);
    }
    let path = dir.join("secrets.pcap");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn redact_overwrites_secrets_of_an_ordinary_pcap_and_logs_show_redacted() {
    let d = tmp();
    let pcap = secret_pcap(d.path());
    let plain = jsonl(&analyze_ok(["logs".as_ref(), pcap.as_os_str()]));
    assert_eq!(plain.len(), 1);
    assert_eq!(
        plain[0]["http"]["uri"],
        "/orders?id=7&token=TOK3N-VALUE&page=2"
    );
    let red = analyze_ok(["--redact".as_ref(), "logs".as_ref(), pcap.as_os_str()]);
    for s in ["TOK3N", "SPLIT-SECRET", "COOKIE-VALUE", "SETCOOKIE"] {
        assert!(!red.contains(s), "{s} in {red}");
    }
    let v = jsonl(&red);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["http"]["uri"], "/orders?id=7&token=[redacted]&page=2");
    assert_eq!(v[0]["http"]["method"], "GET");
    assert_eq!(v[0]["http"]["status_code"], 200);
    assert_eq!(v[0]["http"]["response_body_len"], 2);
    assert_eq!(v[0]["outcome"], "complete");
    // The report says what --redact did.
    let rep = analyze_ok(["--redact".as_ref(), "report".as_ref(), pcap.as_os_str()]);
    assert!(
        rep.contains("--redact: 4 values overwritten (http-auth 1, http-cookie 2, http-headers 0, url-query 1,"),
        "{rep}"
    );
    // A rule turned off.
    let v = jsonl(&analyze_ok([
        "--redact".as_ref(),
        "--no-redact".as_ref(),
        "url-query".as_ref(),
        "logs".as_ref(),
        pcap.as_os_str(),
    ]));
    assert_eq!(v[0]["http"]["uri"], "/orders?id=7&token=TOK3N-VALUE&page=2");
    // Bad options are refused.
    let out = analyze([
        "--redact".as_ref(),
        "--no-redact".as_ref(),
        "cookies".as_ref(),
        "logs".as_ref(),
        pcap.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown redaction rule"));
}

/// The pcap as a Juno archive; with `filler`, each packet is followed by a node record
/// carrying 2 KB of letters that compress poorly (to make the file span several age chunks).
fn archive_of(pcap: &Path, filler: bool) -> Vec<u8> {
    use juno_analyze::input::{BatchItem, InputOptions, Inputs};
    use juno_archive::*;
    let info = FileInfo {
        node: "n1".into(),
        start_ns: 1,
        ..Default::default()
    };
    let opts = FrameOptions {
        frame_size: 16 << 10,
        level: -1,
    };
    let mut w = ArchiveWriter::new(Vec::new(), &info, opts).unwrap();
    let iface = w
        .add_interface(&InterfaceDesc {
            name: "veth0".into(),
            description: None,
            linktype: 1,
            snaplen: 65535,
        })
        .unwrap();
    let mut x = 1u64;
    Inputs::open(&[pcap.to_path_buf()], InputOptions::default())
        .unwrap()
        .read(|b| {
            for it in &b.items {
                if let BatchItem::Packet(p) = it {
                    w.write_packet(iface, p.ts, b.packet_data(p), p.orig_len)
                        .unwrap();
                    if filler {
                        let kernel: String = (0..2048)
                            .map(|_| {
                                x = x
                                    .wrapping_mul(6364136223846793005)
                                    .wrapping_add(1442695040888963407);
                                (b'a' + (x >> 59) as u8 % 26) as char
                            })
                            .collect();
                        w.write_record(&Record::Metadata(MetaRecord {
                            ts_ns: p.ts,
                            op: MetaOp::Upsert,
                            entity: Entity::Node(NodeMeta {
                                name: "n1".into(),
                                kernel: Some(kernel),
                                boot_id: None,
                            }),
                        }))
                        .unwrap();
                    }
                }
            }
            true
        })
        .unwrap();
    w.finish().unwrap()
}

fn encrypt(plain: &[u8], to: &age::x25519::Recipient) -> Vec<u8> {
    use std::io::Write;
    let enc = age::Encryptor::with_recipients(std::iter::once(to as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap();
    out
}

#[test]
fn encrypted_archive_is_unreadable_without_its_identity_and_the_same_with_it() {
    let d = tmp();
    let pcap = secret_pcap(d.path());
    let plain = archive_of(&pcap, false);
    let id = age::x25519::Identity::generate();
    let enc = encrypt(&plain, &id.to_public());
    assert!(!enc.windows(5).any(|w| w == b"TOK3N"));
    let a = d.path().join("a.pcapng.zst");
    let e = d
        .path()
        .join("juno-n1-20261123T175700Z-000000.pcapng.zst.age");
    std::fs::write(&a, &plain).unwrap();
    std::fs::write(&e, &enc).unwrap();
    let key = d.path().join("key.txt");
    use age::secrecy::ExposeSecret;
    std::fs::write(
        &key,
        format!("# test key\n{}\n", id.to_string().expose_secret()),
    )
    .unwrap();
    let other = d.path().join("other.txt");
    std::fs::write(
        &other,
        format!(
            "{}\n",
            age::x25519::Identity::generate()
                .to_string()
                .expose_secret()
        ),
    )
    .unwrap();

    let out = analyze(["logs".as_ref(), e.as_os_str()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("encrypted (age)") && err.contains("--identity"),
        "{err}"
    );
    let out = analyze([
        "--identity".as_ref(),
        other.as_os_str(),
        "logs".as_ref(),
        e.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot decrypt"));

    let want = analyze_ok(["logs".as_ref(), a.as_os_str()]);
    let got = analyze_ok([
        "--identity".as_ref(),
        key.as_os_str(),
        "logs".as_ref(),
        e.as_os_str(),
    ]);
    assert_eq!(got, want);
    assert_eq!(jsonl(&got).len(), 1);
    let rep = analyze_ok([
        "--identity".as_ref(),
        key.as_os_str(),
        "report".as_ref(),
        e.as_os_str(),
    ]);
    assert!(rep.contains("age-encrypted"), "{rep}");

    // Cut short: read up to its last whole 64 KiB chunk, with a warning.
    let big = archive_of(&fixture("http-nginx-curl.pcap"), true);
    assert!(big.len() > 3 * 65536, "{}", big.len());
    let whole = d.path().join("big.pcapng.zst.age");
    let cut = d.path().join("cut.pcapng.zst.age");
    let enc = encrypt(&big, &id.to_public());
    std::fs::write(&whole, &enc).unwrap();
    std::fs::write(&cut, &enc[..enc.len() * 2 / 3]).unwrap();
    let all = jsonl(&analyze_ok([
        "--identity".as_ref(),
        key.as_os_str(),
        "logs".as_ref(),
        whole.as_os_str(),
    ]));
    assert_eq!(all.len(), 17);
    let out = analyze([
        "--identity".as_ref(),
        key.as_os_str(),
        "logs".as_ref(),
        cut.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    // A file cut short is damaged input: the run finishes and exits with 2.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("encrypted archive cut short"), "{err}");
    let some = jsonl(&String::from_utf8(out.stdout).unwrap());
    assert!(!some.is_empty() && some.len() < all.len(), "{}", some.len());
}
