//! TLS rules on handshakes built here byte by byte: each test names the rule it checks.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use super::wire::{self, content, ext, hs};
use super::*;
use crate::l7::harness::{Run, Step, conn, drive};
use crate::model::{Exchange, Outcome};

fn record(ctype: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![ctype, 3, 3];
    r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    r.extend_from_slice(payload);
    r
}

fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

fn extension(ty: u16, data: &[u8]) -> Vec<u8> {
    let mut e = ty.to_be_bytes().to_vec();
    e.extend_from_slice(&(data.len() as u16).to_be_bytes());
    e.extend_from_slice(data);
    e
}

fn u16s(prefix: usize, v: &[u16]) -> Vec<u8> {
    let body: Vec<u8> = v.iter().flat_map(|x| x.to_be_bytes()).collect();
    let mut out = if prefix == 1 {
        vec![body.len() as u8]
    } else {
        (body.len() as u16).to_be_bytes().to_vec()
    };
    out.extend(body);
    out
}

fn sni(name: &str) -> Vec<u8> {
    let mut entry = vec![0];
    entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
    entry.extend_from_slice(name.as_bytes());
    let mut d = (entry.len() as u16).to_be_bytes().to_vec();
    d.extend(entry);
    extension(ext::SERVER_NAME, &d)
}

fn alpn(protos: &[&str]) -> Vec<u8> {
    let mut l = Vec::new();
    for p in protos {
        l.push(p.len() as u8);
        l.extend_from_slice(p.as_bytes());
    }
    let mut d = (l.len() as u16).to_be_bytes().to_vec();
    d.extend(l);
    extension(ext::ALPN, &d)
}

/// A ClientHello body: version, session id, ciphers, extensions (already encoded).
fn client_hello(version: u16, sid: &[u8], ciphers: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend([7u8; 32]);
    b.push(sid.len() as u8);
    b.extend_from_slice(sid);
    b.extend(u16s(2, ciphers));
    b.extend([1, 0]);
    let e: Vec<u8> = exts.concat();
    b.extend_from_slice(&(e.len() as u16).to_be_bytes());
    b.extend(e);
    handshake(hs::CLIENT_HELLO, &b)
}

fn server_hello(random: [u8; 32], sid: &[u8], cipher: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend(random);
    b.push(sid.len() as u8);
    b.extend_from_slice(sid);
    b.extend(cipher.to_be_bytes());
    b.push(0);
    let e: Vec<u8> = exts.concat();
    b.extend_from_slice(&(e.len() as u16).to_be_bytes());
    b.extend(e);
    handshake(hs::SERVER_HELLO, &b)
}

fn certificate(certs: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in certs {
        list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(c);
    }
    let mut b = (list.len() as u32).to_be_bytes()[1..].to_vec();
    b.extend(list);
    handshake(hs::CERTIFICATE, &b)
}

const ECDHE_RSA_AES128_GCM: u16 = 0xc02f;
const CERT: &[u8] = b"0\x82\x01\x0a not really DER, hashed as it is";

fn ch12() -> Vec<u8> {
    client_hello(
        0x0303,
        &[],
        &[0x0a0a, ECDHE_RSA_AES128_GCM, 0x009c],
        &[
            sni("api.example.test"),
            alpn(&["h2", "http/1.1"]),
            extension(ext::SUPPORTED_GROUPS, &u16s(2, &[29, 23])),
            extension(ext::SIGNATURE_ALGORITHMS, &u16s(2, &[0x0403, 0x0804])),
        ],
    )
}

/// The server's first flight of a TLS 1.2 ECDHE handshake: ServerHello choosing h2,
/// Certificate, ServerKeyExchange on secp256r1, ServerHelloDone.
fn server_flight12(sid: &[u8]) -> Vec<Vec<u8>> {
    vec![
        server_hello([9; 32], sid, ECDHE_RSA_AES128_GCM, &[alpn(&["h2"])]),
        certificate(&[CERT]),
        handshake(hs::SERVER_KEY_EXCHANGE, &[3, 0, 23, 1, 4]),
        handshake(hs::SERVER_HELLO_DONE, &[]),
    ]
}

fn run(steps: &[Step<'_>]) -> Run {
    let whole = drive(&mut Tls::default(), "tls", conn(443), steps, false);
    whole.check();
    let bytewise = drive(&mut Tls::default(), "tls", conn(443), steps, true);
    bytewise.check();
    assert_eq!(
        whole.ex.iter().map(|e| &e.fields).collect::<Vec<_>>(),
        bytewise.ex.iter().map(|e| &e.fields).collect::<Vec<_>>(),
        "a byte at a time gives the same fields"
    );
    whole
}

fn one(r: &Run) -> &Exchange {
    assert_eq!(r.ex.len(), 1, "{:?}", r.ex);
    &r.ex[0]
}

fn text<'a>(e: &'a Exchange, k: &str) -> Option<&'a str> {
    e.fields.text(k).map(|t| std::str::from_utf8(t).unwrap())
}

fn flag(e: &Exchange, k: &str) -> Option<bool> {
    match e.fields.get(k) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

#[test]
fn tls12_handshake_is_established_when_both_sides_send_ciphertext() {
    let c1 = record(content::HANDSHAKE, &ch12());
    let s1 = record(content::HANDSHAKE, &server_flight12(&[]).concat());
    let c2 = [
        record(
            content::HANDSHAKE,
            &handshake(hs::CLIENT_KEY_EXCHANGE, &[1, 2]),
        ),
        record(content::CCS, &[1]),
        record(content::HANDSHAKE, &[0x55; 40]),
    ]
    .concat();
    // The server's Finished is encrypted: that record establishes the connection.
    let s2 = [
        record(content::CCS, &[1]),
        record(content::HANDSHAKE, &[0x66; 40]),
    ]
    .concat();
    let r = run(&[Step::C(&c1), Step::S(&s1), Step::C(&c2), Step::S(&s2)]);
    let e = one(&r);
    assert_eq!(e.outcome, Outcome::Complete);
    assert_eq!(text(e, "version"), Some("TLSv12"));
    assert_eq!(
        text(e, "cipher"),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
    assert_eq!(text(e, "curve"), Some("secp256r1"));
    assert_eq!(text(e, "server_name"), Some("api.example.test"));
    assert_eq!(text(e, "next_protocol"), Some("h2"));
    assert_eq!(text(e, "ssl_history"), Some("CsxknGIi"));
    assert_eq!(flag(e, "established"), Some(true));
    assert_eq!(flag(e, "resumed"), Some(false));
    assert_eq!(
        e.fields.get("alpn_offered"),
        Some(&Value::list(vec![b"h2".to_vec(), b"http/1.1".to_vec()]))
    );
    assert_eq!(
        e.fields.get("supported_groups"),
        Some(&Value::list(vec![
            b"x25519".to_vec(),
            b"secp256r1".to_vec()
        ]))
    );
    assert_eq!(
        e.fields.get("cert_chain_fps"),
        Some(&Value::list(vec![fingerprint(CERT).into_bytes()]))
    );
    assert_eq!(
        e.fields.get("client_cert_chain_fps"),
        Some(&Value::List(Vec::new()))
    );
    // The ClientHello is the request, the server's part up to the establishment the reply.
    assert_eq!(e.request.unwrap().start, 1000);
    assert_eq!(e.response.unwrap().start, 2000);
    assert_eq!(e.response.unwrap().end, Some(4000));
    assert!(text(e, "ja4").unwrap().starts_with("t12d0204h2_"));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
}

#[test]
fn handshake_messages_are_reassembled_across_records_and_several_share_a_record() {
    // The ClientHello cut over three records, the server's flight as one message per record
    // but two records in one segment, and everything again a byte at a time (run()).
    let ch = ch12();
    let c1 = [
        record(content::HANDSHAKE, &ch[..3]),
        record(content::HANDSHAKE, &ch[3..50]),
        record(content::HANDSHAKE, &ch[50..]),
    ]
    .concat();
    let flight = server_flight12(&[]);
    let s1 = [
        record(
            content::HANDSHAKE,
            &[flight[0].clone(), flight[1].clone()].concat(),
        ),
        record(
            content::HANDSHAKE,
            &[flight[2].clone(), flight[3].clone()].concat(),
        ),
    ]
    .concat();
    let r = run(&[Step::C(&c1), Step::S(&s1)]);
    let e = one(&r);
    assert_eq!(text(e, "server_name"), Some("api.example.test"));
    assert_eq!(text(e, "ssl_history"), Some("Csxkn"));
    assert_eq!(text(e, "curve"), Some("secp256r1"));
    assert_eq!(flag(e, "established"), Some(false));
}

fn ch13(exts_extra: &[Vec<u8>]) -> Vec<u8> {
    let mut exts = vec![
        sni("svc.example.test"),
        extension(ext::SUPPORTED_VERSIONS, &u16s(1, &[0x3a3a, 0x0304, 0x0303])),
        extension(ext::SUPPORTED_GROUPS, &u16s(2, &[29, 23])),
        extension(ext::KEY_SHARE, &[0, 6, 0, 29, 0, 2, 0xaa, 0xbb]),
        extension(ext::SIGNATURE_ALGORITHMS, &u16s(2, &[0x0403])),
    ];
    exts.extend_from_slice(exts_extra);
    client_hello(0x0303, &[5; 32], &[0x1301, 0x1302], &exts)
}

fn sh13(random: [u8; 32], extra: &[Vec<u8>]) -> Vec<u8> {
    let mut exts = vec![
        extension(ext::SUPPORTED_VERSIONS, &[3, 4]),
        extension(ext::KEY_SHARE, &[0, 29, 0, 2, 0xcc, 0xdd]),
    ];
    exts.extend_from_slice(extra);
    server_hello(random, &[5; 32], 0x1301, &exts)
}

#[test]
fn tls13_version_comes_from_supported_versions_and_application_data_starts_encryption() {
    let c1 = record(content::HANDSHAKE, &ch13(&[]));
    let s1 = [
        record(content::HANDSHAKE, &sh13([1; 32], &[])),
        record(content::CCS, &[1]),
        record(content::APPLICATION_DATA, &[0x77; 60]),
    ]
    .concat();
    let c2 = [
        record(content::CCS, &[1]),
        record(content::APPLICATION_DATA, &[0x78; 50]),
    ]
    .concat();
    let r = run(&[Step::C(&c1), Step::S(&s1), Step::C(&c2)]);
    let e = one(&r);
    assert_eq!(text(e, "version"), Some("TLSv13"));
    assert_eq!(text(e, "client_version"), Some("TLSv12"));
    assert_eq!(text(e, "cipher"), Some("TLS_AES_128_GCM_SHA256"));
    assert_eq!(text(e, "curve"), Some("x25519"));
    assert_eq!(text(e, "ssl_history"), Some("CsiI"));
    assert_eq!(flag(e, "established"), Some(true));
    // The same session id echoed is no resumption in TLS 1.3.
    assert_eq!(flag(e, "resumed"), Some(false));
    assert!(text(e, "ja4").unwrap().starts_with("t13d0205"));
}

#[test]
fn tls13_without_change_cipher_spec_is_established_by_application_data_both_ways() {
    let c1 = record(content::HANDSHAKE, &ch13(&[]));
    let s1 = [
        record(content::HANDSHAKE, &sh13([1; 32], &[])),
        record(content::APPLICATION_DATA, &[0x77; 60]),
    ]
    .concat();
    let c2 = record(content::APPLICATION_DATA, &[0x78; 50]);
    let r = run(&[Step::C(&c1), Step::S(&s1), Step::C(&c2)]);
    let e = one(&r);
    assert_eq!(text(e, "ssl_history"), Some("Cs"));
    assert_eq!(flag(e, "established"), Some(true));
}

#[test]
fn hello_retry_request_is_a_j_and_the_second_hello_is_logged() {
    let c1 = record(content::HANDSHAKE, &ch13(&[]));
    let hrr = server_hello(
        wire::HRR_RANDOM,
        &[5; 32],
        0x1301,
        &[
            extension(ext::SUPPORTED_VERSIONS, &[3, 4]),
            extension(ext::KEY_SHARE, &[0, 23]),
        ],
    );
    let s1 = [record(content::HANDSHAKE, &hrr), record(content::CCS, &[1])].concat();
    let c2 = [
        record(content::CCS, &[1]),
        record(content::HANDSHAKE, &ch13(&[])),
    ]
    .concat();
    let s2 = record(content::HANDSHAKE, &sh13([2; 32], &[]));
    let r = run(&[Step::C(&c1), Step::S(&s1), Step::C(&c2), Step::S(&s2)]);
    let e = one(&r);
    // The compatibility ChangeCipherSpecs of TLS 1.3 start no encryption: the second
    // ClientHello is read (Zeek's baseline for its hrr.pcap: `CjiICs`).
    assert_eq!(text(e, "ssl_history"), Some("CjiICs"));
    assert_eq!(flag(e, "established"), Some(false));
    assert_eq!(flag(e, "hello_retry_request"), Some(true));
    assert_eq!(text(e, "curve"), Some("x25519"));
}

#[test]
fn alert_before_encryption_is_read_and_fails_the_handshake() {
    let c1 = record(content::HANDSHAKE, &ch12());
    let s1 = record(content::ALERT, &[2, 40]);
    let r = run(&[Step::C(&c1), Step::S(&s1)]);
    let e = one(&r);
    assert_eq!(e.outcome, Outcome::NoResponse);
    assert_eq!(text(e, "last_alert"), Some("handshake_failure"));
    assert_eq!(text(e, "ssl_history"), Some("Cl"));
    assert_eq!(flag(e, "established"), Some(false));
    assert_eq!(
        e.fields.get("alerts"),
        Some(&Value::list(vec![
            b"server fatal handshake_failure".to_vec()
        ]))
    );
    let s = (PROTOCOL.summarize)(e);
    assert!(s.failed);
    assert_eq!(s.status.as_deref(), Some("handshake_failure"));
    assert_eq!(s.endpoint, "api.example.test");
}

#[test]
fn alert_after_change_cipher_spec_is_encrypted_and_only_counted() {
    let c1 = record(content::HANDSHAKE, &ch12());
    let s1 = record(content::HANDSHAKE, &server_flight12(&[]).concat());
    let c2 = [
        record(
            content::HANDSHAKE,
            &handshake(hs::CLIENT_KEY_EXCHANGE, &[1, 2]),
        ),
        record(content::CCS, &[1]),
        record(content::HANDSHAKE, &[0x55; 40]),
    ]
    .concat();
    let s2 = [record(content::CCS, &[1])].concat();
    // The client's alert after its ChangeCipherSpec: two bytes of ciphertext and a MAC.
    let c3 = record(content::ALERT, &[0x13; 26]);
    let r = run(&[
        Step::C(&c1),
        Step::S(&s1),
        Step::C(&c2),
        Step::S(&s2),
        Step::C(&c3),
    ]);
    let e = one(&r);
    assert_eq!(text(e, "last_alert"), None);
    // Both sides encrypting and a ciphertext record: established (Zeek logs here).
    assert_eq!(flag(e, "established"), Some(true));
    assert_eq!(e.fields.u64("encrypted_alerts"), Some(1));
}

#[test]
fn echoed_session_id_resumes_a_tls12_session() {
    let sid = [0x42; 32];
    let c1 = record(
        content::HANDSHAKE,
        &client_hello(0x0303, &sid, &[ECDHE_RSA_AES128_GCM], &[sni("a.test")]),
    );
    let s1 = record(
        content::HANDSHAKE,
        &server_hello([3; 32], &sid, ECDHE_RSA_AES128_GCM, &[]),
    );
    let r = run(&[Step::C(&c1), Step::S(&s1)]);
    assert_eq!(flag(one(&r), "resumed"), Some(true));
}

#[test]
fn session_ticket_with_empty_session_id_resumes_at_the_client_change_cipher_spec() {
    let c1 = record(
        content::HANDSHAKE,
        &client_hello(
            0x0303,
            &[],
            &[ECDHE_RSA_AES128_GCM],
            &[extension(ext::SESSION_TICKET, &[9; 64])],
        ),
    );
    let s1 = [
        record(
            content::HANDSHAKE,
            &server_hello([3; 32], &[], ECDHE_RSA_AES128_GCM, &[]),
        ),
        record(content::CCS, &[1]),
        record(content::HANDSHAKE, &[0x66; 40]),
    ]
    .concat();
    let c2 = [
        record(content::CCS, &[1]),
        record(content::HANDSHAKE, &[0x55; 40]),
    ]
    .concat();
    let r = run(&[Step::C(&c1), Step::S(&s1), Step::C(&c2)]);
    let e = one(&r);
    assert_eq!(flag(e, "resumed"), Some(true));
    assert_eq!(text(e, "ssl_history"), Some("CsiI"));
    assert_eq!(flag(e, "established"), Some(true));
}

#[test]
fn psk_accepted_by_the_server_resumes_a_tls13_session() {
    let psk = extension(ext::PRE_SHARED_KEY, &[0, 0]);
    let c1 = record(content::HANDSHAKE, &ch13(std::slice::from_ref(&psk)));
    let s1 = record(
        content::HANDSHAKE,
        &sh13([1; 32], &[extension(ext::PRE_SHARED_KEY, &[0, 0])]),
    );
    let r = run(&[Step::C(&c1), Step::S(&s1)]);
    let e = one(&r);
    assert_eq!(flag(e, "resumed"), Some(true));
    assert_eq!(flag(e, "psk_offered"), Some(true));
}

/// An SSLv2-compatible ClientHello (as old clients sent to reach SSLv3/TLS servers).
fn ssl2_hello() -> Vec<u8> {
    let ciphers = [0x00, 0x00, 0x04, 0x01, 0x00, 0x80, 0x00, 0x00, 0x2f];
    let challenge = [0xab; 16];
    let mut body = vec![1, 3, 1];
    body.extend((ciphers.len() as u16).to_be_bytes());
    body.extend(0u16.to_be_bytes());
    body.extend((challenge.len() as u16).to_be_bytes());
    body.extend(ciphers);
    body.extend(challenge);
    let mut r = ((body.len() as u16) | 0x8000).to_be_bytes().to_vec();
    r.extend(body);
    r
}

#[test]
fn sslv2_compatible_client_hello_is_recognised() {
    let c = ssl2_hello();
    assert_eq!(
        probe(&ProbeInput {
            to_server: &c,
            to_client: &[],
            server_port: 40001,
            transport: Transport::Tcp,
        }),
        Probe::Yes
    );
    let s1 = record(content::HANDSHAKE, &server_hello([3; 32], &[], 0x002f, &[]));
    let r = run(&[Step::C(&c), Step::S(&s1)]);
    let e = one(&r);
    assert_eq!(flag(e, "sslv2_client_hello"), Some(true));
    assert_eq!(text(e, "client_version"), Some("TLSv10"));
    assert_eq!(
        e.fields.get("ciphers_offered"),
        Some(&Value::Counts(vec![0x04, 0x010080, 0x2f]))
    );
    assert_eq!(text(e, "version"), Some("TLSv12"));
    assert_eq!(text(e, "ssl_history"), Some("Cs"));
    assert_eq!(text(e, "ja4"), None);
}

#[test]
fn bytes_that_are_not_tls_give_a_named_weird_and_stop_the_parser() {
    let cases: &[(&[u8], &str)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", "tls_invalid_record_version"),
        (&[0x63, 3, 3, 0, 1, 0], "tls_invalid_content_type"),
        (&[0x16, 3, 3, 0xff, 0xff], "tls_record_too_long"),
        (&[0x19, 3, 3, 0, 1, 0], "tls_unknown_content_type"),
    ];
    for (bytes, weird) in cases {
        let c1 = record(content::HANDSHAKE, &ch12());
        let r = run(&[Step::C(&c1), Step::S(bytes)]);
        assert_eq!(r.state, ParserState::GaveUp, "{weird}");
        assert!(r.weirds.contains(weird), "{weird}: {:?}", r.weirds);
        // The row is still written, with what was seen.
        assert_eq!(text(one(&r), "server_name"), Some("api.example.test"));
    }
    // A malformed ClientHello inside a good record.
    let r = run(&[Step::C(&record(
        content::HANDSHAKE,
        &handshake(1, &[3, 3, 0]),
    ))]);
    assert!(r.weirds.contains(&"tls_malformed_hello"), "{:?}", r.weirds);
}

#[test]
fn handshake_message_over_the_bound_is_skipped_not_buffered() {
    // A certificate chain longer than the bound is hashed as it passes (Zeek's trace
    // tls-fragmented-handshake has a 340 KB one); another over-long message is skipped and
    // named. Neither is buffered.
    let c1 = record(content::HANDSHAKE, &ch12());
    let big = vec![0x30; MAX_HANDSHAKE + 10];
    let second = b"second certificate".to_vec();
    let cert = certificate(&[&big, &second]);
    let supplemental = handshake(hs::SUPPLEMENTAL_DATA, &vec![7; MAX_HANDSHAKE + 1]);
    let mut s = record(
        content::HANDSHAKE,
        &server_hello([9; 32], &[], ECDHE_RSA_AES128_GCM, &[]),
    );
    for msg in [&cert, &supplemental] {
        for chunk in msg.chunks(wire::MAX_RECORD - 100) {
            s.extend(record(content::HANDSHAKE, chunk));
        }
    }
    s.extend(record(
        content::HANDSHAKE,
        &handshake(hs::SERVER_HELLO_DONE, &[]),
    ));
    for bytewise in [false, true] {
        let mut t = Tls::default();
        let r = drive(
            &mut t,
            "tls",
            conn(443),
            &[Step::C(&c1), Step::S(&s)],
            bytewise,
        );
        r.check();
        let e = one(&r);
        assert_eq!(text(e, "ssl_history"), Some("Csxan"));
        assert_eq!(
            e.fields.get("cert_chain_fps"),
            Some(&Value::list(vec![
                fingerprint(&big).into_bytes(),
                fingerprint(&second).into_bytes()
            ]))
        );
        assert_eq!(
            r.weirds
                .iter()
                .filter(|w| **w == "tls_handshake_message_too_long")
                .count(),
            1
        );
        assert!(
            t.sides
                .iter()
                .all(|s| s.hs.capacity() <= 2 * wire::MAX_RECORD)
        );
    }
}

#[test]
fn gap_stops_the_parser_as_in_zeek_and_the_row_says_what_was_seen() {
    let c1 = record(content::HANDSHAKE, &ch12());
    let r = run(&[Step::C(&c1), Step::GapS(100), Step::S(&[1, 2, 3])]);
    assert_eq!(r.state, ParserState::GaveUp);
    let e = one(&r);
    assert_eq!(text(e, "server_name"), Some("api.example.test"));
    assert!(!e.request.unwrap().complete || e.response.is_none());
    assert!(r.weirds.contains(&"tls_content_gap"));
}

#[test]
fn probe_wants_a_hello_record() {
    let ch = record(content::HANDSHAKE, &ch12());
    let sh = record(
        content::HANDSHAKE,
        &server_hello([9; 32], &[], ECDHE_RSA_AES128_GCM, &[]),
    );
    let p = |c: &[u8], s: &[u8]| {
        probe(&ProbeInput {
            to_server: c,
            to_client: s,
            server_port: 8443,
            transport: Transport::Tcp,
        })
    };
    assert_eq!(p(&ch, &[]), Probe::Yes);
    assert_eq!(p(&ch[..3], &[]), Probe::NeedMore);
    assert_eq!(p(&[], &sh), Probe::Yes);
    assert_eq!(p(b"GET / HTTP/1.1\r\n", &[]), Probe::No);
    assert_eq!(
        p(&[0x16, 3, 3, 0, 4, 2], &[]),
        Probe::No,
        "a ServerHello from the client"
    );
    assert_eq!(
        p(&[0x17, 3, 3, 0, 4, 1], &[]),
        Probe::No,
        "application data mid-stream"
    );
    assert_eq!(p(&[0x16, 3, 9], &[]), Probe::No);
}

#[test]
fn zeek_row_has_zeeks_columns() {
    let c1 = record(content::HANDSHAKE, &ch12());
    let s1 = record(content::ALERT, &[2, 70]);
    let r = run(&[Step::C(&c1), Step::S(&s1)]);
    let mut row = Vec::new();
    assert!((ZEEK_LOG.row)(one(&r), &mut row));
    assert_eq!(row.len(), ZEEK_LOG.fields.len());
    use crate::l7::ZVal;
    assert_eq!(row[3], ZVal::Text(b"api.example.test"[..].into()));
    assert_eq!(row[5], ZVal::Text(b"protocol_version"[..].into()));
    assert_eq!(row[7], ZVal::Bool(false));
    assert_eq!(row[9], ZVal::Unset);
}

#[test]
fn names_follow_zeeks_tables_and_defaults() {
    assert_eq!(wire::version_name(0x7f17), "TLSv13-draft23");
    assert_eq!(wire::version_name(0x7e01), "unknown-32257");
    assert_eq!(zeek::cipher_name(0x1301), "TLS_AES_128_GCM_SHA256");
    assert_eq!(zeek::cipher_name(0x1399), "unknown-5017");
    assert_eq!(zeek::group_name(0x11ec), "X25519MLKEM768");
    assert_eq!(zeek::alert_name(40), "handshake_failure");
}

#[test]
fn random_conversations_keep_the_invariants() {
    // Valid messages, cut, mutated and interleaved: no panic, the harness's invariants hold.
    let msgs: Vec<Vec<u8>> = vec![
        record(content::HANDSHAKE, &ch12()),
        record(content::HANDSHAKE, &ch13(&[])),
        record(content::HANDSHAKE, &server_flight12(&[]).concat()),
        record(content::HANDSHAKE, &sh13([1; 32], &[])),
        record(content::CCS, &[1]),
        record(content::ALERT, &[2, 40]),
        record(content::APPLICATION_DATA, &[1; 30]),
        ssl2_hello(),
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..400 {
        let mut data = vec![(next() % 8) as u8];
        for _ in 0..(next() % 12) {
            let mut m = msgs[(next() as usize) % msgs.len()].clone();
            if next() % 3 == 0 {
                let i = (next() as usize) % m.len();
                m[i] = next() as u8;
            }
            if next() % 4 == 0 {
                m.truncate((next() as usize) % m.len());
            }
            for piece in m.chunks(255) {
                data.push((next() % 256) as u8 & 0x7f);
                data.push(piece.len() as u8);
                data.extend_from_slice(piece);
            }
        }
        crate::l7::harness::fuzz(&PROTOCOL, b"", &data);
    }
}
