//! Protocol detection and the session (detection buffer → parser → matcher) on an arbitrary
//! conversation: the first byte picks transport, server port (each protocol's, or none) and
//! the detection buffer's size; then steps as `l7::harness::steps_from_bytes`, plus ends.
//! Invariants: the detection buffer never holds more than its limit and one segment; probes
//! run a few times per direction, not once per segment; the memory the session reports to
//! its context is what it holds, and all of it is given back when it finishes; exchanges
//! are of this connection (roles swapped only where they were a guess).
#![no_main]

use std::sync::Arc;

use juno_analyze::conn::session::{Ctx, Session};
use juno_analyze::l7::harness::{Step, steps_from_bytes};
use juno_analyze::model::{ConnInfo, Dir, Endpoint, Transport, Vantage};
use juno_analyze::proto::PROTOCOLS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let transport = if mode & 1 == 0 { Transport::Tcp } else { Transport::Udp };
    let ports: Vec<u16> = PROTOCOLS.iter().flat_map(|p| p.ports.iter().copied()).collect();
    let port = ports.get(usize::from(mode >> 4)).copied().unwrap_or(40001);
    let limit = 256usize << (mode >> 1 & 7);
    let info = Arc::new(ConnInfo {
        uid: "Cfuzz".into(),
        orig: Endpoint::new([10, 0, 0, 1].into(), 40000),
        resp: Endpoint::new([10, 0, 0, 2].into(), port),
        transport,
        vantage: Vantage::Packets { iface: 0 },
        first_ts: 0,
        partial: mode & 0x08 != 0,
        tunnel: None,
        community_id: String::new(),
        duplicate: false,
    });
    let mut ctx = Ctx::with_detect_limit(limit);
    let mut s = Session::new(info.clone());
    let steps = steps_from_bytes(rest, transport);
    let mut biggest = 0usize;
    for (i, st) in steps.iter().enumerate() {
        let ts = i as u64 + 1;
        match *st {
            Step::C(b) => s.data(Dir::ToServer, ts, b, &mut ctx),
            Step::S(b) => s.data(Dir::ToClient, ts, b, &mut ctx),
            Step::GapC(n) => s.gap(Dir::ToServer, ts, n, &mut ctx),
            Step::GapS(n) => s.gap(Dir::ToClient, ts, n, &mut ctx),
        }
        if let Step::C(b) | Step::S(b) = st {
            biggest = biggest.max(b.len());
        }
        assert_eq!(ctx.session_bytes, s.mem(), "reported vs held");
        if s.protocol().is_none() {
            // Still detecting (or unidentified: then nothing is held).
            assert!(
                s.mem() <= limit + biggest + 4 * 2048 + 64 * (i + 1),
                "detection holds {} bytes (limit {limit})",
                s.mem()
            );
        }
    }
    // Doubling: at most a dozen looks per direction, plus ends and the final decision.
    assert!(s.probe_runs() <= 32, "{} probe runs", s.probe_runs());
    let end = steps.len() as u64 + 2;
    if mode & 0x80 != 0 {
        s.end(Dir::ToServer, end, &mut ctx);
        s.end(Dir::ToClient, end, &mut ctx);
    }
    s.finish(end + 1, &mut ctx);
    assert_eq!(ctx.session_bytes, 0, "memory not given back");
    let c = s.info();
    let swapped = c.orig == info.resp && c.resp == info.orig;
    assert!(**c == *info || (swapped && s.roles_reversed()), "roles changed without reason");
    assert!(!s.roles_reversed() || transport == Transport::Udp || info.partial);
    for e in &ctx.exchanges {
        assert!(Arc::ptr_eq(&e.conn, c) || e.conn.uid == c.uid, "an exchange of another connection");
    }
});
