//! One harness for exercising a protocol's parser and the matcher without packets: a
//! conversation of client bytes, server bytes and gaps is run through [`Protocol::new_parser`]
//! and a [`Matcher`], and the exchanges, anomalies and counters come back as a [`Run`]. Unit
//! tests write conversations by hand ([`Step`]); fuzz targets turn arbitrary bytes into one
//! ([`steps_from_bytes`]) and call [`fuzz`], which also checks the invariants every parser and
//! the matcher must keep whatever the input ([`Run::check`]).

use std::sync::Arc;

use super::{
    Emitter, MAX_OPEN, MAX_PIPELINED, MatchStats, Matcher, Parser, ParserState, ProbeInput,
    Protocol,
};
use crate::model::{ConnInfo, Dir, Endpoint, Exchange, Outcome, Transport, Vantage};

/// One step of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Client bytes (on UDP: one datagram).
    C(&'a [u8]),
    /// Server bytes (on UDP: one datagram).
    S(&'a [u8]),
    /// Client bytes lost.
    GapC(u64),
    /// Server bytes lost.
    GapS(u64),
}

/// What a conversation produced.
#[derive(Debug)]
pub struct Run {
    /// Exchanges, in the order the matcher wrote them.
    pub ex: Vec<Exchange>,
    /// Anomalies, in order.
    pub weirds: Vec<&'static str>,
    /// The parser's state before the ends of the streams.
    pub state: ParserState,
    /// The matcher's counters.
    pub stats: MatchStats,
    /// The most records the matcher held open at once.
    pub max_open: usize,
}

/// A connection 10.0.0.1:40000 → 10.0.0.2:`port` over `transport`, with its handshake seen
/// unless `partial`.
pub fn conn_with(transport: Transport, port: u16, partial: bool) -> Arc<ConnInfo> {
    Arc::new(ConnInfo {
        uid: "Ct".into(),
        orig: Endpoint::new([10, 0, 0, 1].into(), 40000),
        resp: Endpoint::new([10, 0, 0, 2].into(), port),
        transport,
        vantage: Vantage::Packets { iface: 0 },
        first_ts: 0,
        partial,
        tunnel: None,
        community_id: String::new(),
        duplicate: false,
    })
}

/// A TCP connection 10.0.0.1:40000 → 10.0.0.2:`port`.
pub fn conn(port: u16) -> Arc<ConnInfo> {
    conn_with(Transport::Tcp, port, false)
}

/// Feeds `steps` to `p` (step `i` at time `(i + 1) * 1000`; data a byte at a time when
/// `bytewise`), then the ends of both directions, matching what it emits on `conn`.
pub fn drive(
    p: &mut dyn Parser,
    protocol: &'static str,
    conn: Arc<ConnInfo>,
    steps: &[Step<'_>],
    bytewise: bool,
) -> Run {
    let mut m = Matcher::new(protocol, conn);
    let mut out = Emitter::default();
    let mut stats = MatchStats::default();
    let mut ex = Vec::new();
    let mut weirds = Vec::new();
    let mut max_open = 0;
    for (i, s) in steps.iter().enumerate() {
        let ts = (i as u64 + 1) * 1000;
        match *s {
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
            Step::GapC(n) => p.gap(Dir::ToServer, ts, n, &mut out),
            Step::GapS(n) => p.gap(Dir::ToClient, ts, n, &mut out),
        }
        m.feed(&mut out, &mut stats, &mut ex);
        max_open = max_open.max(m.open_len());
        weirds.append(&mut out.weirds);
    }
    let state = p.state();
    let end = (steps.len() as u64 + 1) * 1000;
    p.end(Dir::ToServer, end, &mut out);
    p.end(Dir::ToClient, end, &mut out);
    m.feed(&mut out, &mut stats, &mut ex);
    max_open = max_open.max(m.open_len());
    m.finish(&mut stats, &mut ex);
    weirds.append(&mut out.weirds);
    Run {
        ex,
        weirds,
        state,
        stats,
        max_open,
    }
}

impl Run {
    /// Checks what must hold after any conversation, panicking with the broken invariant:
    /// every exchange has a request or a response; depths are distinct and start at 1;
    /// outcomes agree with the spans (a complete exchange has both messages whole and
    /// ended); no message ends before it starts, and no response starts before its request;
    /// the counters add up to the exchanges written; the matcher never held more records than
    /// its bounds ([`MAX_OPEN`] keyed by id, [`MAX_PIPELINED`] in line, and the answer to an
    /// evicted request being dropped).
    pub fn check(&self) {
        let written = self.stats.complete
            + self.stats.truncated
            + self.stats.no_response
            + self.stats.no_request
            + self.stats.late_request_end;
        assert_eq!(written, self.ex.len() as u64, "counters vs exchanges");
        assert!(
            self.max_open <= MAX_OPEN.max(MAX_PIPELINED) + 1,
            "{} records open",
            self.max_open
        );
        let mut depths: Vec<u32> = Vec::with_capacity(self.ex.len());
        for e in &self.ex {
            assert!(e.depth >= 1, "depth 0");
            depths.push(e.depth);
            for s in [e.request, e.response].into_iter().flatten() {
                assert!(
                    s.end.is_none_or(|end| end >= s.start),
                    "ends before it starts: {e:?}"
                );
            }
            match e.outcome {
                Outcome::Complete => {
                    let (Some(q), Some(r)) = (e.request, e.response) else {
                        panic!("complete without both messages: {e:?}");
                    };
                    assert!(q.complete && r.complete, "complete with a cut message");
                    assert!(r.end.is_some(), "complete without a response end");
                }
                Outcome::NoResponse => assert!(e.request.is_some() && e.response.is_none()),
                Outcome::NoRequest => assert!(e.request.is_none()),
                Outcome::Truncated => assert!(e.request.is_some() && e.response.is_some()),
                Outcome::LateRequestEnd => {}
            }
            if let (Some(q), Some(r)) = (e.request, e.response) {
                assert!(r.start >= q.start, "response before its request: {e:?}");
            }
        }
        depths.sort_unstable();
        let n = depths.len();
        depths.dedup();
        assert_eq!(n, depths.len(), "two exchanges with one depth");
    }
}

/// Turns arbitrary bytes into a conversation, for fuzzing: each step is a control byte and
/// a length byte, then that many bytes (fewer at the end of the input). The control byte's
/// top bit makes the step a gap of that length (a huge one when bit 5 is set too), bit 6
/// makes it the server's; on UDP there are no gaps.
pub fn steps_from_bytes(mut data: &[u8], transport: Transport) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    while let [ctl, len, rest @ ..] = data {
        let n = usize::from(*len).min(rest.len());
        let (seg, next) = rest.split_at(n);
        data = next;
        let server = ctl & 0x40 != 0;
        if ctl & 0x80 != 0 && transport == Transport::Tcp {
            let lost = if ctl & 0x20 != 0 {
                u64::MAX / 2
            } else {
                n as u64
            };
            steps.push(if server {
                Step::GapS(lost)
            } else {
                Step::GapC(lost)
            });
        } else if !seg.is_empty() {
            steps.push(if server { Step::S(seg) } else { Step::C(seg) });
        }
    }
    steps
}

/// Fuzzes `proto` with arbitrary bytes: the first byte picks the transport (where the
/// protocol has both), the server port (its usual one or not) and whether the connection
/// began before the capture; the probe sees the first bytes of both directions; `prefix`, if
/// any, is sent by the client first (a preface the fuzzer would take long to find); then the
/// rest as [`steps_from_bytes`], whole and (on TCP) a byte at a time. Both runs are checked
/// ([`Run::check`]).
pub fn fuzz(proto: &Protocol, prefix: &[u8], data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let transport = match proto.transports {
        [one] => *one,
        many => many[usize::from(mode & 1) % many.len().max(1)],
    };
    let port = if mode & 2 == 0 {
        proto.ports.first().copied().unwrap_or(40001)
    } else {
        40001
    };
    let steps = steps_from_bytes(rest, transport);
    let first = |server: bool| {
        steps
            .iter()
            .find_map(|s| match (s, server) {
                (Step::C(b), false) | (Step::S(b), true) => Some(*b),
                _ => None,
            })
            .unwrap_or_default()
    };
    let _ = (proto.probe)(&ProbeInput {
        to_server: first(false),
        to_client: first(true),
        server_port: port,
        transport,
    });
    let mut all = Vec::with_capacity(steps.len() + 1);
    if !prefix.is_empty() {
        all.push(Step::C(prefix));
    }
    all.extend(steps);
    let conn = conn_with(transport, port, mode & 4 != 0);
    let whole = drive(
        &mut *(proto.new_parser)(&conn),
        proto.name,
        conn.clone(),
        &all,
        false,
    );
    whole.check();
    if transport == Transport::Tcp {
        let bytewise = drive(
            &mut *(proto.new_parser)(&conn),
            proto.name,
            conn,
            &all,
            true,
        );
        bytewise.check();
    }
}
