//! Detection: the probe on greetings, commands and other protocols' first bytes.

use super::*;
use crate::l7::{Probe, ProbeInput};
use crate::proto::mysql::probe::probe;

#[test]
fn mariadb_greeting_parses() {
    let g = hex(MARIADB_GREETING);
    let w = wire::parse_greeting(&g[4..]).unwrap();
    assert_eq!(w.server_version, b"5.5.5-10.11.19-MariaDB-0+deb12u1");
    assert_eq!(w.connection_id, 5);
    assert_eq!(w.auth_plugin, Some(&b"mysql_native_password"[..]));
    // CLIENT_MYSQL clear: MariaDB's extended capabilities are in the high half.
    assert_eq!(w.capabilities & cap::CLIENT_MYSQL, 0);
    assert_ne!(w.capabilities >> 32, 0);
    assert_eq!(look_greeting(&g), Look::Yes);
}

fn probe_of(to_server: &[u8], to_client: &[u8], port: u16) -> Probe {
    probe(&ProbeInput {
        to_server,
        to_client,
        server_port: port,
        transport: Transport::Tcp,
    })
}

#[test]
fn probe_cases() {
    let g = greeting(BASE_CAPS);
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let dns = hex("001d12340100000100000000000003777777076578616d706c6503636f6d0000010001");
    let tls = hex("160301020001000200");
    let cases: &[(&[u8], &[u8], u16, Probe)] = &[
        (b"", &g, 40000, Probe::Yes),
        (b"", &g[..20], 40000, Probe::NeedMore),
        (b"", &g[..3], 3306, Probe::NeedMore),
        (b"", &hex(MARIADB_GREETING), 3306, Probe::Yes),
        (http, b"", 3306, Probe::No),
        (http, b"HTTP/1.1 200 OK\r\n", 80, Probe::No),
        (&dns, b"", 53, Probe::No),
        (&tls, b"", 3306, Probe::No),
        (b"", b"SSH-2.0-OpenSSH_9.2\r\n", 3306, Probe::No),
        (b"", b"220 mail ESMTP\r\n", 3306, Probe::No),
        // Mid-stream: a command on the MySQL port; elsewhere only with its answer.
        (&query("SELECT 1"), b"", 3306, Probe::Yes),
        (&query("SELECT 1"), b"", 40000, Probe::NeedMore),
        (&query("SELECT 1"), &ok(1, 0, 2), 40000, Probe::Yes),
        (&query("SELECT 1"), b"HTTP/1.1 200 OK\r\n", 40000, Probe::No),
        (&query("SELECT 1")[..7], b"", 3306, Probe::NeedMore),
        (&query("\x01\x02binary"), b"", 3306, Probe::No),
        (&cmd(0x0e, b""), b"", 3306, Probe::Yes),
        (&cmd(0x0e, b"x"), b"", 3306, Probe::No),
    ];
    for (i, (c, s, port, want)) in cases.iter().enumerate() {
        assert_eq!(probe_of(c, s, *port), *want, "case {i}");
    }
}
