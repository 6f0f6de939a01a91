//! Detection: the probe on first messages, mid-stream traffic and other protocols, and the
//! registry's choice between PostgreSQL and HTTP on each other's ports.

use super::*;
use crate::l7::{Probe, ProbeInput};
use crate::proto::postgresql::probe::probe;

#[test]
fn probe_cases() {
    let p = |c: &[u8], s: &[u8], port: u16| {
        probe(&ProbeInput {
            to_server: c,
            to_client: s,
            server_port: port,
            transport: Transport::Tcp,
        })
    };
    assert_eq!(p(SSL_REQUEST, b"", 9999), Probe::Yes);
    assert_eq!(p(GSSENC_REQUEST, b"", 9999), Probe::Yes);
    assert_eq!(p(&startup(&[("user", "u")]), b"", 9999), Probe::Yes);
    assert_eq!(p(&SSL_REQUEST[..5], b"", 5432), Probe::NeedMore);
    assert_eq!(p(b"", b"", 5432), Probe::NeedMore);
    // Not PostgreSQL: HTTP, TLS, DNS over TCP, SSH.
    assert_eq!(
        p(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"", 5432),
        Probe::No
    );
    assert_eq!(p(b"", b"HTTP/1.1 200 OK\r\n", 5432), Probe::No);
    assert_eq!(p(&[0x16, 3, 1, 2, 0, 1], b"", 5432), Probe::No);
    assert_eq!(
        p(&[0, 0x1c, 0x12, 0x34, 1, 0, 0, 1, 0, 0], b"", 5432),
        Probe::No
    );
    assert_eq!(p(b"SSH-2.0-OpenSSH_9.2\r\n", b"", 5432), Probe::No);
    // Mid-stream: typed messages.
    let two = cat(&[query("SELECT 1"), query("SELECT 2")]);
    assert_eq!(p(&two, b"", 9999), Probe::Yes);
    assert_eq!(p(&query("SELECT 1"), b"", 5432), Probe::Yes);
    assert_eq!(p(&query("SELECT 1"), b"", 9999), Probe::NeedMore);
    assert_eq!(
        p(
            &query("SELECT 1"),
            &cat(&[complete("SELECT 1"), ready(b'I')]),
            9999
        ),
        Probe::Yes
    );
    assert_eq!(p(&msg(b'Q', b"no nul"), b"", 5432), Probe::No);
    assert_eq!(p(b"", &ready(b'X'), 5432), Probe::No);
    assert_eq!(
        p(b"", &cat(&[complete("BEGIN"), ready(b'T')]), 9999),
        Probe::Yes
    );
    // Not on UDP.
    assert_eq!(
        probe(&ProbeInput {
            to_server: SSL_REQUEST,
            to_client: b"",
            server_port: 5432,
            transport: Transport::Udp,
        }),
        Probe::No
    );
}

#[test]
fn detection_does_not_steal_http_or_dns() {
    let http = ProbeInput {
        to_server: b"GET / HTTP/1.1\r\n\r\n",
        to_client: b"",
        server_port: 5432,
        transport: Transport::Tcp,
    };
    let d = crate::proto::detect(&http, true).unwrap().unwrap();
    assert_eq!(d.proto.name, "http");
    let pg = ProbeInput {
        to_server: SSL_REQUEST,
        to_client: b"",
        server_port: 80,
        transport: Transport::Tcp,
    };
    let d = crate::proto::detect(&pg, false).unwrap().unwrap();
    assert_eq!(d.proto.name, "postgresql");
}
