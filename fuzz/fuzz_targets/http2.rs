//! The HTTP/2 parser and the matcher on an arbitrary conversation: the first input byte picks
//! a partial (mid-stream) or complete connection and whether the client's bytes start with
//! the preface; the rest is cut into segments by length bytes, sent alternately by the client
//! and the server, some lost (gaps). The probe sees the input too.
#![no_main]

use std::sync::Arc;

use juno_analyze::decode::{Endpoint, Transport};
use juno_analyze::exchange::{ConnInfo, Vantage};
use juno_analyze::matching::{MatchStats, Matcher};
use juno_analyze::proto::http2::frame::PREFACE;
use juno_analyze::proto::{Dir, Emitter, PROTOCOLS, ProbeInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(h2) = PROTOCOLS.iter().find(|p| p.name == "http2") else { return };
    let Some((&mode, mut rest)) = data.split_first() else { return };
    let _ = (h2.probe)(&ProbeInput {
        to_server: rest,
        to_client: rest.get(rest.len() / 2..).unwrap_or_default(),
        server_port: 80,
        transport: Transport::Tcp,
    });
    let conn = Arc::new(ConnInfo {
        uid: "Cfuzz".into(),
        orig: Endpoint::new([10, 0, 0, 1].into(), 1),
        resp: Endpoint::new([10, 0, 0, 2].into(), 80),
        transport: Transport::Tcp,
        vantage: Vantage::Packets { iface: 0 },
        first_ts: 0,
        partial: mode & 1 == 1,
    });
    let mut p = (h2.new_parser)(&conn);
    let mut m = Matcher::new("http2", conn);
    let mut out = Emitter::default();
    let mut st = MatchStats::default();
    let mut ex = Vec::new();
    if mode & 2 == 2 {
        p.data(Dir::ToServer, 0, PREFACE, &mut out);
    }
    let mut ts = 0;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = usize::from(ctl).min(tail.len());
        let (seg, next) = tail.split_at(len);
        rest = next;
        ts += 1;
        let dir = if ts % 2 == 0 { Dir::ToServer } else { Dir::ToClient };
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
