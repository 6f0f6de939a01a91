//! Test support for protocol parsers: a conversation of client bytes, server bytes and gaps,
//! run through a parser and the matcher — whole, or a byte at a time.

use std::sync::Arc;

use super::{Dir, Emitter, Parser, ParserState};
use crate::decode::{Endpoint, Transport};
use crate::exchange::{ConnInfo, Exchange, Vantage};
use crate::matching::{MatchStats, Matcher};

/// One step of a conversation.
pub(crate) enum Step<'a> {
    /// Client bytes.
    C(&'a [u8]),
    /// Server bytes.
    S(&'a [u8]),
    /// Client bytes lost.
    GapC(u64),
    /// Server bytes lost.
    GapS(u64),
}

/// What a conversation produced.
pub(crate) struct Run {
    /// Exchanges, in the order the matcher wrote them.
    pub(crate) ex: Vec<Exchange>,
    /// Anomalies, in order.
    pub(crate) weirds: Vec<&'static str>,
    /// The parser's state before the ends of the streams.
    pub(crate) state: ParserState,
}

/// A TCP connection 10.0.0.1:40000 → 10.0.0.2:`port`.
pub(crate) fn conn(port: u16) -> Arc<ConnInfo> {
    Arc::new(ConnInfo {
        uid: "Ct".into(),
        orig: Endpoint::new([10, 0, 0, 1].into(), 40000),
        resp: Endpoint::new([10, 0, 0, 2].into(), port),
        transport: Transport::Tcp,
        vantage: Vantage::Packets { iface: 0 },
        first_ts: 0,
        partial: false,
    })
}

/// Feeds `steps` to `p` (step `i` at time `(i + 1) * 1000`; data a byte at a time when
/// `bytewise`), then the ends of both directions, matching what it emits on `conn`.
pub(crate) fn drive(
    p: &mut dyn Parser,
    protocol: &'static str,
    conn: Arc<ConnInfo>,
    steps: &[Step<'_>],
    bytewise: bool,
) -> Run {
    let mut m = Matcher::new(protocol, conn);
    let mut out = Emitter::default();
    let mut st = MatchStats::default();
    let mut ex = Vec::new();
    let mut weirds = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let ts = (i as u64 + 1) * 1000;
        match s {
            Step::C(b) | Step::S(b) => {
                let dir = if matches!(s, Step::C(_)) {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                };
                if bytewise {
                    for byte in b.chunks(1) {
                        p.data(dir, ts, byte, &mut out);
                    }
                } else {
                    p.data(dir, ts, b, &mut out);
                }
            }
            Step::GapC(n) => p.gap(Dir::ToServer, ts, *n, &mut out),
            Step::GapS(n) => p.gap(Dir::ToClient, ts, *n, &mut out),
        }
        m.feed(&mut out.events, &mut st, &mut ex);
        weirds.append(&mut out.weirds);
    }
    let state = p.state();
    let end = (steps.len() as u64 + 1) * 1000;
    p.end(Dir::ToServer, end, &mut out);
    p.end(Dir::ToClient, end, &mut out);
    m.feed(&mut out.events, &mut st, &mut ex);
    m.finish(&mut st, &mut ex);
    weirds.append(&mut out.weirds);
    Run { ex, weirds, state }
}
