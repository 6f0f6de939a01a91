//! The MySQL parser and the matcher on an arbitrary conversation: the input is cut into
//! segments by length bytes, sent alternately by the server and the client (the server
//! first, as in MySQL), some lost. The probe sees the input too.
#![no_main]

use std::sync::Arc;

use juno_analyze::decode::{Endpoint, Transport};
use juno_analyze::exchange::{ConnInfo, Vantage};
use juno_analyze::matching::{MatchStats, Matcher};
use juno_analyze::proto::{Dir, Emitter, PROTOCOLS, ProbeInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(mysql) = PROTOCOLS.iter().find(|p| p.name == "mysql") else { return };
    let Some((&mode, mut rest)) = data.split_first() else { return };
    let _ = (mysql.probe)(&ProbeInput {
        to_server: rest.get(rest.len() / 2..).unwrap_or_default(),
        to_client: rest,
        server_port: if mode & 1 == 0 { 3306 } else { 40000 },
        transport: Transport::Tcp,
    });
    let conn = Arc::new(ConnInfo {
        uid: "Cfuzz".into(),
        orig: Endpoint::new([10, 0, 0, 1].into(), 1),
        resp: Endpoint::new([10, 0, 0, 2].into(), 3306),
        transport: Transport::Tcp,
        vantage: Vantage::Packets { iface: 0 },
        first_ts: 0,
        partial: mode & 2 != 0,
    });
    let mut p = (mysql.new_parser)(&conn);
    let mut m = Matcher::new("mysql", conn);
    let mut out = Emitter::default();
    let mut st = MatchStats::default();
    let mut ex = Vec::new();
    let mut ts = 0;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = usize::from(ctl).min(tail.len());
        let (seg, next) = tail.split_at(len);
        rest = next;
        ts += 1;
        let dir = if ts % 2 == 1 { Dir::ToClient } else { Dir::ToServer };
        // A segment whose length is a multiple of 61 is lost (a gap of its length, or a
        // huge one when the mode says so).
        if len > 0 && len % 61 == 0 {
            let n = if mode & 4 != 0 { u64::MAX / 2 } else { seg.len() as u64 };
            p.gap(dir, ts, n, &mut out);
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
