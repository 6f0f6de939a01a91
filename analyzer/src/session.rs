//! The L7 side of a connection: protocol detection on the first bytes, then the protocol's
//! parser, then the matcher. Fed by TCP reassembly, by UDP datagrams, or by socket payload
//! events — the same code whatever the vantage point.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::exchange::{ConnInfo, Exchange};
use crate::matching::{MatchStats, Matcher};
use crate::proto::{self, Dir, Emitter, Parser, ParserState, ProbeInput, Protocol, Ts};

/// Bytes per direction kept for protocol detection.
pub const PROBE_BYTES: usize = 2048;

/// Parser-level counters, kept per shard and summed.
#[derive(Debug, Default)]
pub struct L7Stats {
    /// Matching outcomes.
    pub matching: MatchStats,
    /// Anomalies reported by parsers, by name.
    pub weirds: FxHashMap<&'static str, u64>,
    /// Connections per detected protocol (`-` for none).
    pub protocols: FxHashMap<&'static str, u64>,
    /// Connections whose parser gave up (lost sync, violation).
    pub gave_up: u64,
}

impl L7Stats {
    /// Adds another set of counters.
    pub fn add(&mut self, o: &L7Stats) {
        self.matching.add(&o.matching);
        for (k, v) in &o.weirds {
            *self.weirds.entry(k).or_default() += v;
        }
        for (k, v) in &o.protocols {
            *self.protocols.entry(k).or_default() += v;
        }
        self.gave_up += o.gave_up;
    }
}

/// Where sessions put what they produce.
#[derive(Debug, Default)]
pub struct Ctx {
    /// Finished exchanges.
    pub exchanges: Vec<Exchange>,
    /// Counters.
    pub stats: L7Stats,
    emitter: Emitter,
}

enum Held {
    Data(Dir, Ts, Vec<u8>),
    Gap(Dir, Ts, u64),
    End(Dir, Ts),
}

enum L7 {
    Probing {
        held: Vec<Held>,
        first: [Vec<u8>; 2],
        ended: [bool; 2],
    },
    Active {
        proto: &'static Protocol,
        parser: Box<dyn Parser>,
        matcher: Matcher,
    },
    /// No parser took it (or the one that did is done): bytes are only counted.
    Passive {
        proto: Option<&'static Protocol>,
        matcher: Option<Matcher>,
    },
}

/// The L7 state of one connection.
pub struct Session {
    info: Arc<ConnInfo>,
    l7: L7,
    finished: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("uid", &self.info.uid)
            .field("protocol", &self.protocol())
            .finish()
    }
}

impl Session {
    /// A session for a new connection.
    pub fn new(info: Arc<ConnInfo>) -> Self {
        Session {
            info,
            l7: L7::Probing {
                held: Vec::new(),
                first: [Vec::new(), Vec::new()],
                ended: [false; 2],
            },
            finished: false,
        }
    }

    /// The connection.
    pub fn info(&self) -> &Arc<ConnInfo> {
        &self.info
    }

    /// The detected protocol, if any.
    pub fn protocol(&self) -> Option<&'static str> {
        match &self.l7 {
            L7::Active { proto, .. } => Some(proto.name),
            L7::Passive { proto, .. } => proto.map(|p| p.name),
            L7::Probing { .. } => None,
        }
    }

    /// Bytes in direction `dir`.
    pub fn data(&mut self, dir: Dir, ts: Ts, data: &[u8], ctx: &mut Ctx) {
        if data.is_empty() {
            return;
        }
        match &mut self.l7 {
            L7::Active { parser, .. } => {
                parser.data(dir, ts, data, &mut ctx.emitter);
                self.after_parser(ctx);
            }
            L7::Probing { held, first, .. } => {
                let f = &mut first[dir.idx()];
                let room = PROBE_BYTES.saturating_sub(f.len());
                f.extend_from_slice(&data[..data.len().min(room)]);
                held.push(Held::Data(dir, ts, data.to_vec()));
                self.try_detect(false, ctx);
            }
            L7::Passive { .. } => {}
        }
    }

    /// `len` bytes lost in direction `dir`.
    pub fn gap(&mut self, dir: Dir, ts: Ts, len: u64, ctx: &mut Ctx) {
        match &mut self.l7 {
            L7::Active { parser, .. } => {
                parser.gap(dir, ts, len, &mut ctx.emitter);
                self.after_parser(ctx);
            }
            L7::Probing { held, first, ended } => {
                held.push(Held::Gap(dir, ts, len));
                // Detection only looks at a stream's beginning: after a gap, no more bytes
                // of this direction count.
                if first[dir.idx()].len() < PROBE_BYTES {
                    ended[dir.idx()] = true;
                }
            }
            L7::Passive { .. } => {}
        }
    }

    /// Direction `dir` ended.
    pub fn end(&mut self, dir: Dir, ts: Ts, ctx: &mut Ctx) {
        match &mut self.l7 {
            L7::Active { parser, .. } => {
                parser.end(dir, ts, &mut ctx.emitter);
                self.after_parser(ctx);
            }
            L7::Probing { held, ended, .. } => {
                held.push(Held::End(dir, ts));
                ended[dir.idx()] = true;
                if ended[0] && ended[1] {
                    self.try_detect(true, ctx);
                }
            }
            L7::Passive { .. } => {}
        }
    }

    /// The connection is over: decide on whatever was seen, flush the matcher.
    pub fn finish(&mut self, ts: Ts, ctx: &mut Ctx) {
        if self.finished {
            return;
        }
        if matches!(self.l7, L7::Probing { .. }) {
            self.try_detect(true, ctx);
        }
        if let L7::Active { parser, .. } = &mut self.l7 {
            for d in [Dir::ToServer, Dir::ToClient] {
                parser.end(d, ts, &mut ctx.emitter);
            }
            self.after_parser(ctx);
        }
        match &mut self.l7 {
            L7::Active { matcher, .. }
            | L7::Passive {
                matcher: Some(matcher),
                ..
            } => {
                matcher.feed(
                    &mut ctx.emitter.events,
                    &mut ctx.stats.matching,
                    &mut ctx.exchanges,
                );
                matcher.finish(&mut ctx.stats.matching, &mut ctx.exchanges);
            }
            _ => {}
        }
        self.finished = true;
    }

    fn after_parser(&mut self, ctx: &mut Ctx) {
        for w in ctx.emitter.weirds.drain(..) {
            *ctx.stats.weirds.entry(w).or_default() += 1;
        }
        let L7::Active {
            parser,
            matcher,
            proto,
        } = &mut self.l7
        else {
            return;
        };
        matcher.feed(
            &mut ctx.emitter.events,
            &mut ctx.stats.matching,
            &mut ctx.exchanges,
        );
        let st = parser.state();
        if st != ParserState::Active {
            if st == ParserState::GaveUp {
                ctx.stats.gave_up += 1;
            }
            let proto = *proto;
            let old = std::mem::replace(
                &mut self.l7,
                L7::Passive {
                    proto: Some(proto),
                    matcher: None,
                },
            );
            if let L7::Active { matcher, .. } = old {
                self.l7 = L7::Passive {
                    proto: Some(proto),
                    matcher: Some(matcher),
                };
            }
        }
    }

    fn try_detect(&mut self, final_call: bool, ctx: &mut Ctx) {
        let L7::Probing { first, ended, .. } = &self.l7 else {
            return;
        };
        let full = |d: usize| ended[d] || first[d].len() >= PROBE_BYTES;
        let input = ProbeInput {
            to_server: &first[0],
            to_client: &first[1],
            server_port: self.info.resp.port,
            transport: self.info.transport,
        };
        let verdict = proto::detect(&input, final_call || (full(0) && full(1)));
        let Some(verdict) = verdict else { return };
        let L7::Probing { held, .. } = std::mem::replace(
            &mut self.l7,
            L7::Passive {
                proto: None,
                matcher: None,
            },
        ) else {
            return;
        };
        match verdict {
            Ok(p) => {
                *ctx.stats.protocols.entry(p.name).or_default() += 1;
                self.l7 = L7::Active {
                    proto: p,
                    parser: (p.new_parser)(),
                    matcher: Matcher::new(p.name, self.info.clone()),
                };
                for h in held {
                    match h {
                        Held::Data(d, ts, b) => self.data(d, ts, &b, ctx),
                        Held::Gap(d, ts, n) => self.gap(d, ts, n, ctx),
                        Held::End(d, ts) => self.end(d, ts, ctx),
                    }
                }
            }
            Err(()) => {
                *ctx.stats.protocols.entry("-").or_default() += 1;
            }
        }
    }
}
