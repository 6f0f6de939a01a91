//! The Redis parser and the matcher on an arbitrary conversation: the input is cut into
//! segments, each sent by the client or the server or lost (a gap), as its control bytes say.
#![no_main]

use std::sync::Arc;

use juno_analyze::decode::{Endpoint, Transport};
use juno_analyze::exchange::{ConnInfo, Vantage};
use juno_analyze::matching::{MatchStats, Matcher};
use juno_analyze::proto::{Dir, Emitter, PROTOCOLS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(redis) = PROTOCOLS.iter().find(|p| p.name == "redis") else { return };
    let conn = Arc::new(ConnInfo {
        uid: "Cfuzz".into(),
        orig: Endpoint::new([10, 0, 0, 1].into(), 1),
        resp: Endpoint::new([10, 0, 0, 2].into(), 6379),
        transport: Transport::Tcp,
        vantage: Vantage::Packets { iface: 0 },
        first_ts: 0,
        partial: false,
    });
    let mut p = (redis.new_parser)(&conn);
    let mut m = Matcher::new("redis", conn);
    let mut out = Emitter::default();
    let mut st = MatchStats::default();
    let mut ex = Vec::new();
    let mut rest = data;
    let mut ts = 0;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = usize::from(ctl & 0x3f).min(tail.len());
        let (seg, next) = tail.split_at(len);
        rest = next;
        ts += 1;
        let dir = if ctl & 0x40 == 0 { Dir::ToServer } else { Dir::ToClient };
        if ctl & 0x80 != 0 && len > 0 {
            p.gap(dir, ts, seg.len() as u64 * 97, &mut out);
        } else {
            p.data(dir, ts, seg, &mut out);
        }
        m.feed(&mut out.events, &mut st, &mut ex);
    }
    p.end(Dir::ToServer, ts, &mut out);
    p.end(Dir::ToClient, ts, &mut out);
    m.feed(&mut out.events, &mut st, &mut ex);
    m.finish(&mut st, &mut ex);
});
