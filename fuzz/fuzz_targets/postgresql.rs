//! The PostgreSQL parser and the matcher on an arbitrary conversation: the first input byte
//! picks the server port (5432 or another) and whether the connection began before the
//! capture; the rest is cut into segments by length bytes, sent alternately by the client and
//! the server, some of them lost (gaps). The probe sees the input too.
#![no_main]

use std::sync::Arc;

use juno_analyze::decode::{Endpoint, Transport};
use juno_analyze::exchange::{ConnInfo, Vantage};
use juno_analyze::matching::{MatchStats, Matcher};
use juno_analyze::proto::{Dir, Emitter, PROTOCOLS, ProbeInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(pg) = PROTOCOLS.iter().find(|p| p.name == "postgresql") else { return };
    let Some((&mode, mut rest)) = data.split_first() else { return };
    let port = if mode & 1 == 0 { 5432 } else { 40000 };
    let _ = (pg.probe)(&ProbeInput {
        to_server: rest,
        to_client: rest.get(rest.len() / 2..).unwrap_or_default(),
        server_port: port,
        transport: Transport::Tcp,
    });
    let conn = Arc::new(ConnInfo {
        uid: "Cfuzz".into(),
        orig: Endpoint::new([10, 0, 0, 1].into(), 1),
        resp: Endpoint::new([10, 0, 0, 2].into(), port),
        transport: Transport::Tcp,
        vantage: Vantage::Packets { iface: 0 },
        first_ts: 0,
        partial: mode & 2 != 0,
    });
    let mut p = (pg.new_parser)(&conn);
    let mut m = Matcher::new("postgresql", conn);
    let mut out = Emitter::default();
    let mut st = MatchStats::default();
    let mut ex = Vec::new();
    let mut ts = 0;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = usize::from(ctl).min(tail.len());
        let (seg, next) = tail.split_at(len);
        rest = next;
        ts += 1;
        let dir = if ts % 2 == 0 { Dir::ToClient } else { Dir::ToServer };
        // A segment whose length is a multiple of 61 is lost.
        if len > 0 && len % 61 == 0 {
            p.gap(dir, ts, seg.len() as u64, &mut out);
        } else if !seg.is_empty() {
            p.data(dir, ts, seg, &mut out);
        }
        m.feed(&mut out.events, &mut st, &mut ex);
    }
    p.end(Dir::ToServer, ts, &mut out);
    p.end(Dir::ToClient, ts, &mut out);
    m.feed(&mut out.events, &mut st, &mut ex);
    m.finish(&mut st, &mut ex);
});
