//! Matching: turns a connection's parser events into exchanges.
//!
//! Records are created when a request starts (or when a response arrives with no request to
//! answer), numbered in creation order (`depth`, Zeek's `trans_depth`), and written when their
//! response ends. FIFO keys pair a response with the oldest request that has no response yet
//! (pipelining-aware); id keys pair by identifier. A response that starts before the oldest
//! waiting request started cannot answer it and becomes an orphan, so a lost request does not
//! shift every later pair. (The connection layer hands a TCP connection's two directions over
//! in the order their acknowledgements give and stamps them causally, `conn::order`, so
//! captures merged from skewed clocks pair too.) Requests keyed [`MatchKey::NoResponse`] are
//! written as unanswered when they end. Everything left at the end is written as unmatched.
//!
//! Bounds: at most [`MAX_PIPELINED`] FIFO records and [`MAX_OPEN`] records keyed by id are
//! open. Beyond that the oldest is written early (counted as `overflow`); when it was a request
//! waiting in line, the response that answers it is recognised when it comes, counted
//! (`overflow_answers`) and dropped, so every later response still pairs with its own request.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::l7::{Emitter, Event, MatchKey, keep_spare};
use crate::model::{ConnInfo, Exchange, Fields, Outcome, Span, Ts};

/// Records keyed by id (or without a request) open beyond this are written early, oldest
/// first (bounded memory).
pub const MAX_OPEN: usize = 256;

/// FIFO records (requests answered in order: pipelining) open beyond this are written early,
/// oldest first.
pub const MAX_PIPELINED: usize = 4096;

#[derive(Debug)]
struct Rec {
    id: u64,
    depth: u32,
    ts: Ts,
    key: MatchKey,
    request: Option<Span>,
    response: Option<Span>,
    info_ts: Option<Ts>,
    fields: Fields,
    /// The response of a request written early (overflow): consumed, never written.
    discard: bool,
}

/// Counts of how exchanges came out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatchStats {
    /// Complete exchanges.
    pub complete: u64,
    /// Exchanges cut short.
    pub truncated: u64,
    /// Requests without response.
    pub no_response: u64,
    /// Responses without request.
    pub no_request: u64,
    /// Requests that ended after their exchange was written.
    pub late_request_end: u64,
    /// Records written early because too many were open.
    pub overflow: u64,
    /// Responses to requests written early (overflow), recognised and dropped.
    pub overflow_answers: u64,
}

impl MatchStats {
    /// Adds another set of counters.
    pub fn add(&mut self, o: &MatchStats) {
        self.complete += o.complete;
        self.truncated += o.truncated;
        self.no_response += o.no_response;
        self.no_request += o.no_request;
        self.late_request_end += o.late_request_end;
        self.overflow += o.overflow;
        self.overflow_answers += o.overflow_answers;
    }
}

/// Per-connection matcher.
#[derive(Debug)]
pub struct Matcher {
    protocol: &'static str,
    conn: Arc<ConnInfo>,
    next_id: u64,
    depth: u32,
    open: VecDeque<Rec>,
    req_in_progress: Option<u64>,
    resp_in_progress: Option<u64>,
    /// FIFO requests written early whose responses are still to come.
    owed: u64,
}

impl Matcher {
    /// A matcher for one connection.
    pub fn new(protocol: &'static str, conn: Arc<ConnInfo>) -> Self {
        Matcher {
            protocol,
            conn,
            next_id: 0,
            depth: 0,
            open: VecDeque::new(),
            req_in_progress: None,
            resp_in_progress: None,
            owed: 0,
        }
    }

    fn new_rec(&mut self, key: MatchKey, ts: Ts) -> Rec {
        self.next_id += 1;
        self.depth += 1;
        Rec {
            id: self.next_id,
            depth: self.depth,
            ts,
            key,
            request: None,
            response: None,
            info_ts: None,
            fields: Fields::default(),
            discard: false,
        }
    }

    fn find(&mut self, id: Option<u64>) -> Option<&mut Rec> {
        let id = id?;
        self.open.iter_mut().find(|r| r.id == id)
    }

    fn write(&self, r: Rec, outcome: Outcome, stats: &mut MatchStats, out: &mut Vec<Exchange>) {
        match outcome {
            Outcome::Complete => stats.complete += 1,
            Outcome::Truncated => stats.truncated += 1,
            Outcome::NoResponse => stats.no_response += 1,
            Outcome::NoRequest => stats.no_request += 1,
            Outcome::LateRequestEnd => stats.late_request_end += 1,
        }
        out.push(Exchange {
            conn: self.conn.clone(),
            protocol: self.protocol,
            depth: r.depth,
            ts: r.ts,
            request: r.request,
            response: r.response,
            info_ts: r.info_ts,
            fields: r.fields,
            outcome,
            peers: crate::model::Peers::default(),
        });
    }

    /// The record a response with `key` starting at `ts` answers, creating an orphan record
    /// when there is none.
    fn answer_target(&mut self, key: MatchKey, ts: Ts) -> u64 {
        if key == MatchKey::Fifo {
            // An answer to a request written early: its interim and final responses go to a
            // record that is dropped when the response ends.
            if let Some(r) = self.open.iter().find(|r| r.discard && r.response.is_none()) {
                return r.id;
            }
            if self.owed > 0 {
                self.owed -= 1;
                let mut r = self.new_rec(key, ts);
                self.depth -= 1;
                r.discard = true;
                let id = r.id;
                self.open.push_front(r);
                return id;
            }
        }
        let found = match key {
            MatchKey::Fifo => self
                .open
                .iter()
                .find(|r| r.key == MatchKey::Fifo && r.response.is_none())
                .filter(|r| r.request.is_none_or(|q| q.start <= ts))
                .map(|r| r.id),
            MatchKey::Id(_) => self
                .open
                .iter()
                .find(|r| r.key == key && r.response.is_none())
                .map(|r| r.id),
            MatchKey::NoResponse => None,
        };
        match found {
            Some(id) => id,
            None => {
                let r = self.new_rec(key, ts);
                let id = r.id;
                self.open.push_back(r);
                id
            }
        }
    }

    /// The record a request end with `key` closes: the request in progress; with an id key,
    /// the open request with that id (streams interleave: HTTP/2 ends requests in any order).
    fn request_to_end(&mut self, key: MatchKey) -> Option<u64> {
        let cur = self.req_in_progress;
        let is_cur = |r: &Rec| Some(r.id) == cur && r.key == key;
        if key == MatchKey::Fifo || self.open.iter().any(is_cur) {
            return self.req_in_progress.take();
        }
        let id = self
            .open
            .iter()
            .rev()
            .find(|r| r.key == key && r.request.is_some_and(|q| q.end.is_none()))
            .map(|r| r.id);
        if id.is_some() && id == cur {
            self.req_in_progress = None;
        }
        id
    }

    /// The record a response end with `key` closes (as [`Matcher::request_to_end`]).
    fn response_to_end(&mut self, key: MatchKey) -> Option<u64> {
        let cur = self.resp_in_progress;
        let is_cur = |r: &Rec| Some(r.id) == cur && r.key == key;
        if key == MatchKey::Fifo || self.open.iter().any(is_cur) {
            return self.resp_in_progress.take();
        }
        self.open
            .iter()
            .find(|r| r.key == key && r.response.is_some_and(|s| s.end.is_none()))
            .map(|r| r.id)
    }

    /// Consumes parser events; completed exchanges go to `out`.
    pub fn feed(&mut self, from: &mut Emitter, stats: &mut MatchStats, out: &mut Vec<Exchange>) {
        let Emitter { events, spare, .. } = from;
        for ev in events.drain(..) {
            match ev {
                Event::RequestStart { ts, key, fields } => {
                    let mut r = self.new_rec(key, ts);
                    r.request = Some(Span {
                        start: ts,
                        end: None,
                        complete: false,
                    });
                    r.fields = fields;
                    self.req_in_progress = Some(r.id);
                    self.open.push_back(r);
                    let bound = if key == MatchKey::Fifo {
                        MAX_PIPELINED
                    } else {
                        MAX_OPEN
                    };
                    if self.open.len() > bound {
                        self.evict(stats, out);
                    }
                }
                Event::RequestEnd {
                    ts,
                    key,
                    mut fields,
                    complete,
                } => {
                    let id = self.request_to_end(key);
                    match self.find(id) {
                        Some(r) => {
                            if let Some(q) = &mut r.request {
                                q.end = Some(ts.max(q.start));
                                q.complete = complete;
                            }
                            r.fields.absorb(&mut fields);
                            keep_spare(spare, fields);
                            if r.key == MatchKey::NoResponse {
                                let rid = r.id;
                                if let Some(pos) = self.open.iter().position(|r| r.id == rid)
                                    && let Some(r) = self.open.remove(pos)
                                {
                                    self.write(r, Outcome::NoResponse, stats, out);
                                }
                            }
                        }
                        None if id.is_some() => {
                            // Its exchange was already written (the response ended first).
                            let mut r = self.new_rec(key, ts);
                            r.fields = fields;
                            self.write(r, Outcome::LateRequestEnd, stats, out);
                        }
                        None => {}
                    }
                }
                Event::Info {
                    ts,
                    key,
                    mut fields,
                } => {
                    let id = self.answer_target(key, ts);
                    if let Some(r) = self.find(Some(id)) {
                        r.info_ts = Some(ts);
                        r.fields.absorb(&mut fields);
                        keep_spare(spare, fields);
                    }
                }
                Event::ResponseStart {
                    ts,
                    key,
                    mut fields,
                } => {
                    let id = self.answer_target(key, ts);
                    if let Some(r) = self.find(Some(id)) {
                        // Timestamps never put an answer before its question: a message is
                        // stamped with its first byte, and garbage (or a frame begun before
                        // the request was seen) can claim an earlier one.
                        r.response = Some(Span {
                            start: r.request.map_or(ts, |q| ts.max(q.start)),
                            end: None,
                            complete: false,
                        });
                        r.fields.absorb(&mut fields);
                        keep_spare(spare, fields);
                    }
                    self.resp_in_progress = Some(id);
                }
                Event::ResponseEnd {
                    ts,
                    key,
                    mut fields,
                    complete,
                } => {
                    let id = self.response_to_end(key);
                    let Some(pos) = id.and_then(|id| self.open.iter().position(|r| r.id == id))
                    else {
                        continue;
                    };
                    let Some(mut r) = self.open.remove(pos) else {
                        continue;
                    };
                    if r.discard {
                        stats.overflow_answers += 1;
                        continue;
                    }
                    if let Some(s) = &mut r.response {
                        s.end = Some(ts.max(s.start));
                        s.complete = complete;
                    }
                    r.fields.absorb(&mut fields);
                    keep_spare(spare, fields);
                    let outcome = match (r.request, r.response) {
                        (None, _) => Outcome::NoRequest,
                        (Some(q), Some(s)) if q.complete && s.complete => Outcome::Complete,
                        _ => Outcome::Truncated,
                    };
                    self.write(r, outcome, stats, out);
                }
            }
        }
    }

    /// Writes the oldest open record early. A FIFO request still waiting is owed a response:
    /// that response will be recognised and dropped instead of answering a later request.
    fn evict(&mut self, stats: &mut MatchStats, out: &mut Vec<Exchange>) {
        let Some(old) = self.open.pop_front() else {
            return;
        };
        if old.discard {
            // A response to an earlier evicted request, still being read: its end is ignored.
            stats.overflow_answers += 1;
            return;
        }
        stats.overflow += 1;
        let outcome = match (old.request, old.response) {
            (Some(_), None) => {
                if old.key == MatchKey::Fifo {
                    self.owed += 1;
                }
                Outcome::NoResponse
            }
            (None, _) => Outcome::NoRequest,
            (Some(_), Some(_)) => Outcome::Truncated,
        };
        self.write(old, outcome, stats, out);
    }

    /// Records open now (requests waiting for their response, responses being read).
    pub fn open_len(&self) -> usize {
        self.open.len()
    }

    /// The connection ended: writes every open record.
    pub fn finish(&mut self, stats: &mut MatchStats, out: &mut Vec<Exchange>) {
        self.req_in_progress = None;
        self.resp_in_progress = None;
        while let Some(r) = self.open.pop_front() {
            if r.discard {
                stats.overflow_answers += 1;
                continue;
            }
            let outcome = match (r.request, r.response) {
                (Some(_), None) => Outcome::NoResponse,
                (None, _) => Outcome::NoRequest,
                (Some(_), Some(_)) => Outcome::Truncated,
            };
            self.write(r, outcome, stats, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;
    use crate::model::Vantage;
    use crate::model::{Endpoint, Transport};

    fn conn() -> Arc<ConnInfo> {
        Arc::new(ConnInfo {
            uid: "Ctest".into(),
            orig: Endpoint::new([10, 0, 0, 1].into(), 1000),
            resp: Endpoint::new([10, 0, 0, 2].into(), 80),
            transport: Transport::Tcp,
            vantage: Vantage::Packets { iface: 0 },
            first_ts: 0,
            partial: false,
            tunnel: None,
            community_id: String::new(),
            duplicate: false,
        })
    }

    fn f(name: &'static str, v: u64) -> Fields {
        let mut f = Fields::default();
        f.set(name, Value::U64(v));
        f
    }

    fn req(ts: Ts, n: u64) -> [Event; 2] {
        [
            Event::RequestStart {
                ts,
                key: MatchKey::Fifo,
                fields: f("req", n),
            },
            Event::RequestEnd {
                ts: ts + 1,
                key: MatchKey::Fifo,
                fields: Fields::default(),
                complete: true,
            },
        ]
    }
    fn resp(ts: Ts, n: u64) -> [Event; 2] {
        [
            Event::ResponseStart {
                ts,
                key: MatchKey::Fifo,
                fields: f("resp", n),
            },
            Event::ResponseEnd {
                ts: ts + 1,
                key: MatchKey::Fifo,
                fields: Fields::default(),
                complete: true,
            },
        ]
    }

    fn emitter(events: Vec<Event>) -> Emitter {
        Emitter {
            events,
            ..Emitter::default()
        }
    }

    #[test]
    fn merged_event_fields_come_back_to_the_emitter() {
        let mut m = Matcher::new("t", conn());
        let (mut st, mut out) = (MatchStats::default(), Vec::new());
        let mut ev: Vec<Event> = req(10, 1).into();
        ev.extend(resp(20, 1));
        let mut em = emitter(ev);
        m.feed(&mut em, &mut st, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].fields.u64("req"), Some(1));
        assert_eq!(out[0].fields.u64("resp"), Some(1));
        // The request's list became the exchange's; the response's, merged into it, is
        // handed out again, empty (the two end events had none).
        assert!(em.events.is_empty());
        let again = em.fields();
        assert!(again.is_empty() && again.capacity() > 0);
    }

    fn run(events: Vec<Event>) -> (Vec<Exchange>, MatchStats) {
        let mut m = Matcher::new("t", conn());
        let mut ev = events;
        let mut st = MatchStats::default();
        let mut out = Vec::new();
        m.feed(&mut emitter(std::mem::take(&mut ev)), &mut st, &mut out);
        m.finish(&mut st, &mut out);
        (out, st)
    }

    #[test]
    fn pipelined_pairs_in_order() {
        let mut ev = Vec::new();
        ev.extend(req(10, 1));
        ev.extend(req(20, 2));
        ev.extend(req(30, 3));
        ev.extend(resp(40, 1));
        ev.extend(resp(50, 2));
        ev.extend(resp(60, 3));
        let (out, st) = run(ev);
        assert_eq!(st.complete, 3);
        for (i, x) in out.iter().enumerate() {
            assert_eq!(x.depth, i as u32 + 1);
            assert_eq!(x.fields.u64("req"), x.fields.u64("resp"));
            assert_eq!(x.outcome, Outcome::Complete);
        }
        assert_eq!(out[1].latency_ns(), Some(51 - 20));
        assert_eq!(out[1].ttfb_ns(), Some(50 - 21));
    }

    #[test]
    fn orphans_unanswered_and_late_ends() {
        let mut ev = Vec::new();
        ev.extend(req(10, 1));
        ev.extend(resp(20, 1));
        ev.extend(resp(30, 2)); // no request: orphan, depth 2
        ev.push(Event::RequestStart {
            ts: 40,
            key: MatchKey::Fifo,
            fields: f("req", 3),
        });
        ev.extend(resp(50, 3));
        // The request's end arrives after its exchange was written.
        ev.push(Event::RequestEnd {
            ts: 60,
            key: MatchKey::Fifo,
            fields: f("late", 1),
            complete: true,
        });
        ev.extend(req(70, 4)); // never answered
        let (out, st) = run(ev);
        let kinds: Vec<_> = out.iter().map(|x| (x.depth, x.outcome)).collect();
        assert_eq!(
            kinds,
            vec![
                (1, Outcome::Complete),
                (2, Outcome::NoRequest),
                (3, Outcome::Truncated),
                (4, Outcome::LateRequestEnd),
                (5, Outcome::NoResponse),
            ]
        );
        assert_eq!(
            (st.no_request, st.no_response, st.late_request_end),
            (1, 1, 1)
        );
    }

    #[test]
    fn response_before_request_is_an_orphan() {
        let mut ev = Vec::new();
        ev.extend(resp(5, 9));
        ev.extend(req(10, 1));
        ev.extend(resp(20, 1));
        let (out, _) = run(ev);
        assert_eq!(out[0].outcome, Outcome::NoRequest);
        assert_eq!(out[1].fields.u64("req"), Some(1));
        assert_eq!(out[1].fields.u64("resp"), Some(1));
    }

    #[test]
    fn info_then_final_share_a_record() {
        let mut ev = Vec::new();
        ev.extend(req(10, 1));
        ev.push(Event::Info {
            ts: 12,
            key: MatchKey::Fifo,
            fields: f("info", 100),
        });
        ev.extend(resp(20, 1));
        let (out, _) = run(ev);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].info_ts, Some(12));
        assert_eq!(out[0].fields.u64("info"), Some(100));
    }

    #[test]
    fn requests_without_response_are_written_when_they_end() {
        let mut ev = Vec::new();
        ev.extend(req(10, 1));
        ev.push(Event::RequestStart {
            ts: 20,
            key: MatchKey::NoResponse,
            fields: f("req", 2),
        });
        ev.push(Event::RequestEnd {
            ts: 21,
            key: MatchKey::NoResponse,
            fields: Fields::default(),
            complete: true,
        });
        let mut m = Matcher::new("t", conn());
        let mut st = MatchStats::default();
        let mut out = Vec::new();
        m.feed(&mut emitter(std::mem::take(&mut ev)), &mut st, &mut out);
        // Written at once, while the first request still waits.
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].depth, out[0].outcome), (2, Outcome::NoResponse));
        assert_eq!(out[0].request.unwrap().end, Some(21));
        // A response goes to the first request, never to the one that gets none.
        let mut ev: Vec<Event> = resp(30, 1).into();
        m.feed(&mut emitter(std::mem::take(&mut ev)), &mut st, &mut out);
        assert_eq!(out[1].fields.u64("req"), Some(1));
        assert_eq!(out[1].outcome, Outcome::Complete);
    }

    #[test]
    fn id_keys_end_their_own_records_when_interleaved() {
        let id = MatchKey::Id;
        let start = |ts, k| Event::RequestStart {
            ts,
            key: id(k),
            fields: f("req", k),
        };
        let req_end = |ts, k| Event::RequestEnd {
            ts,
            key: id(k),
            fields: f("req_len", k * 10),
            complete: true,
        };
        let resp = |ts, k| Event::ResponseStart {
            ts,
            key: id(k),
            fields: f("resp", k),
        };
        let resp_end = |ts, k| Event::ResponseEnd {
            ts,
            key: id(k),
            fields: f("resp_len", k * 100),
            complete: true,
        };
        // Streams 1 and 3 open; their requests, then responses, end in the other order.
        let ev = vec![
            start(1, 1),
            start(2, 3),
            req_end(3, 3),
            req_end(4, 1),
            resp(5, 1),
            resp(6, 3),
            resp_end(7, 3),
            resp_end(8, 1),
        ];
        let (out, st) = run(ev);
        assert_eq!(st.complete, 2);
        for x in &out {
            let k = x.fields.u64("req").unwrap();
            assert_eq!(x.fields.u64("resp"), Some(k));
            assert_eq!(x.fields.u64("req_len"), Some(k * 10));
            assert_eq!(x.fields.u64("resp_len"), Some(k * 100));
        }
        assert_eq!(out[0].fields.u64("req"), Some(3));
        assert_eq!(out[0].request.unwrap().end, Some(3));
        assert_eq!(out[1].response.unwrap().end, Some(8));
    }

    #[test]
    fn pipelining_beyond_the_bound_evicts_and_the_rest_still_pairs() {
        let n = MAX_PIPELINED as u64 + 10;
        let mut ev = Vec::new();
        for i in 0..n {
            ev.extend(req(10 * i, i));
        }
        for i in 0..n {
            ev.extend(resp(10 * (n + i), i));
        }
        let (out, st) = run(ev);
        assert_eq!((st.overflow, st.overflow_answers), (10, 10));
        assert_eq!(st.complete, n - 10);
        assert_eq!((st.no_response, st.no_request), (10, 0));
        assert_eq!(out.len() as u64, n);
        for x in out.iter().filter(|x| x.outcome == Outcome::Complete) {
            assert_eq!(x.fields.u64("req"), x.fields.u64("resp"));
        }
        // Depths stay those of the requests.
        let mut depths: Vec<u32> = out.iter().map(|x| x.depth).collect();
        depths.sort_unstable();
        assert_eq!(depths, (1..=n as u32).collect::<Vec<_>>());
    }

    #[test]
    fn open_records_are_bounded() {
        let mut ev = Vec::new();
        for i in 0..(MAX_OPEN as u64 + 10) {
            ev.push(Event::RequestStart {
                ts: i,
                key: MatchKey::Id(i),
                fields: Fields::default(),
            });
        }
        let mut m = Matcher::new("t", conn());
        let mut st = MatchStats::default();
        let mut out = Vec::new();
        m.feed(&mut emitter(std::mem::take(&mut ev)), &mut st, &mut out);
        assert_eq!(out.len(), 10);
        assert_eq!(st.overflow, 10);
    }
}
