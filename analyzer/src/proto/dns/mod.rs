//! DNS over UDP and TCP.
//!
//! Each message becomes one event pair: a query (QR clear) a request, a response a response.
//! Which query a response answers is decided here, with the rules of Zeek's DNS scripts
//! (`base/protocols/dns/main.zeek`), and handed to the matcher as a key unique to that pair
//! ([`MatchKey::Id`]): a response pairs with the oldest waiting query of its id, whatever
//! the direction; a response with no query waiting is held until a query with its id
//! arrives (then they pair, response first) or the flow ends (then it is written alone);
//! past 50 waiting ids, or 50 waiting messages of one id, the waiting ones are given up
//! (written unpaired); a UDP flow idle for Zeek's DNS session timeout starts afresh; messages
//! to a multicast address are never paired. The wire format is read by [`wire`] the way
//! Zeek's analyzer reads it; fields and `dns.log` follow Zeek's scripts (see `docs/dns.md`).
//!
//! - UDP: each `data` call is one datagram, one message (the pipeline's datagram contract).
//! - TCP: messages carry a two-byte length prefix (RFC 1035 §4.2.2); several per connection,
//!   split across or sharing `data` calls. A message is buffered until whole; the length is
//!   16 bits, so at most 65,537 bytes are held per direction. Framing goes on blindly across
//!   a gap (as Zeek's); a message still incomplete when its direction ends is read as far as
//!   it goes.
//! - A message that is not DNS (shorter than a header, or malformed) is reported as a weird
//!   and, when not even a header is there, skipped; one whose header parsed but whose body
//!   stopped early still yields its events with what was parsed. A message with more than
//!   25 questions ends DNS on the flow while it has carried at most 10 KiB (Zeek's DPD).
//!
//! The module's files: [`wire`] (the message format), `probe` (detection), `zeek` (`dns.log`
//! and the report summary), and this file: the connection — framing, pairing — and the
//! [`Parser`] implementation.

mod probe;
pub mod wire;
mod zeek;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::l7::{Emitter, Event, MatchKey, Parser, ParserState, Protocol};
use crate::model::{ConnInfo, Dir, Fields, Text, Transport, Ts, Value};
use crate::read::be_u16;
use wire::{Ctx, Error, Message};

pub use self::zeek::ZEEK_LOG;

/// Ids with messages waiting, per table (Zeek's `DNS::max_pending_query_ids`): when a new id
/// arrives at a table that already holds more, everything in it is given up.
pub const MAX_PENDING_IDS: usize = 50;
/// Messages waiting per id (Zeek's `DNS::max_pending_msgs`): past it, that id's are given up.
pub const MAX_PENDING_MSGS: usize = 50;
/// Bytes of held responses (their rendered fields) per connection; past it, every held
/// response is written unpaired (`dns_held_responses_flushed`). Zeek has no such bound.
pub const MAX_HELD_BYTES: usize = 1 << 20;
/// Answered ids remembered per connection, to call a further response a duplicate.
pub const MAX_ANSWERED: usize = 64;
/// Zeek's `dns_session_timeout`, in ns: a UDP flow's DNS state is dropped when a timer,
/// set every this long from its first message, finds it idle for this minus one second.
pub const SESSION_TIMEOUT: Ts = 10_000_000_000;
/// Zeek's DPD gives DNS up on a violation only while the flow carried at most this many bytes.
pub const VIOLATION_WINDOW: u64 = 10 * 1024;
/// NetBIOS name service port.
const NETBIOS_NS: u16 = 137;
/// Fields a query's list makes room for: it becomes its exchange's list, and the response's
/// are merged into it (a query sets 11, a response 13, 3 of them the same names).
const EXCHANGE_ROOM: usize = 24;
/// Fields a response's list makes room for.
const RESPONSE_ROOM: usize = 16;
/// Keys of messages with opcodes Zeek does not log: paired by id alone, apart from the rest.
const UNTRACKED: u64 = 1 << 40;

/// The registration.
pub static PROTOCOL: Protocol = Protocol {
    name: "dns",
    transports: &[Transport::Udp, Transport::Tcp],
    ports: &[53, 137, 5353, 5355],
    probe: probe::probe,
    new_parser: |c| Box::new(Dns::new(c)),
    zeek: Some(&ZEEK_LOG),
    upgrade: None,
    summarize: zeek::summarize,
};

/// A query waiting for its response: its matching key, and whether it had a question (if
/// not, the response's first answer names the exchange).
#[derive(Clone, Copy, Debug)]
struct Slot {
    key: u64,
    id: u16,
    asked: bool,
    /// When the query began: its answer cannot begin before (a TCP message's first bytes
    /// may have arrived earlier).
    start: Ts,
}

/// A response waiting for its query.
#[derive(Debug)]
struct Held {
    id: u16,
    key: u64,
    start: Ts,
    end: Ts,
    fields: Fields,
    /// Owner of its first handled answer: the exchange's `query` if no query names it.
    owner: Option<Text>,
    complete: bool,
    size: usize,
}

/// Zeek's `PendingMessages`: per id, a queue; ids in arrival order.
#[derive(Debug)]
struct Table<T> {
    ids: VecDeque<(u16, VecDeque<T>)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            ids: VecDeque::new(),
        }
    }
}

impl<T> Table<T> {
    /// Adds `v` under `id`; what had to be given up to make room comes back.
    fn put(&mut self, id: u16, v: T) -> Vec<T> {
        let mut dropped = Vec::new();
        match self.ids.iter().position(|(i, _)| *i == id) {
            None => {
                if self.ids.len() > MAX_PENDING_IDS {
                    dropped = self.drain();
                }
                self.ids.push_back((id, VecDeque::from([v])));
            }
            Some(p) => {
                let q = &mut self.ids[p].1;
                if q.len() > MAX_PENDING_MSGS {
                    dropped.extend(q.drain(..));
                }
                q.push_back(v);
            }
        }
        dropped
    }
    /// The oldest message of `id`.
    fn pop(&mut self, id: u16) -> Option<T> {
        let p = self.ids.iter().position(|(i, _)| *i == id)?;
        let v = self.ids[p].1.pop_front();
        if self.ids[p].1.is_empty() {
            self.ids.remove(p);
        }
        v
    }
    /// The oldest message of the oldest id.
    fn pop_any(&mut self) -> Option<T> {
        let id = self.ids.front()?.0;
        self.pop(id)
    }
    fn drain(&mut self) -> Vec<T> {
        self.ids.drain(..).flat_map(|(_, q)| q).collect()
    }
}

/// The DNS parser of one connection.
#[derive(Debug)]
pub struct Dns {
    /// TCP: length-prefixed messages in a byte stream.
    stream: bool,
    /// How messages are read (NetBIOS ports).
    ctx: Ctx,
    /// NetBIOS name service on UDP port 137: query names are decoded, SRV is NBSTAT.
    nbns: bool,
    /// The responder is a multicast address: messages are never paired.
    multicast: bool,
    /// TCP: the message being assembled per direction, with its length prefix.
    buf: [Vec<u8>; 2],
    /// TCP: when the message being assembled began.
    msg_ts: [Ts; 2],
    /// Payload bytes seen, both directions.
    bytes: u64,
    /// DNS was given up on the flow (too many questions early on).
    dead: bool,
    /// Directions that ended.
    ended: [bool; 2],
    /// The query the next response is checked against first (Zeek's `pending_query`).
    pending_query: Option<Slot>,
    /// Further waiting queries.
    queries: Table<Slot>,
    /// Responses waiting for their query.
    replies: Table<Held>,
    /// Bytes in `replies`.
    held_bytes: usize,
    /// Ids answered recently, oldest first.
    answered: VecDeque<u16>,
    /// Next matching key.
    next_key: u64,
    /// UDP: the first message of the current session, and the last message.
    session: Option<(Ts, Ts)>,
    /// When the latest query with an untracked opcode began (its answer cannot begin
    /// before).
    untracked_start: Ts,
}

impl Dns {
    /// A parser for a connection (its transport decides the framing, its ports and
    /// responder address the reading and the pairing).
    pub fn new(c: &ConnInfo) -> Self {
        let udp = c.transport == Transport::Udp;
        Dns {
            stream: c.transport == Transport::Tcp,
            ctx: Ctx {
                netbios: c.orig.port == NETBIOS_NS || c.resp.port == NETBIOS_NS,
                resp_137: c.resp.port == NETBIOS_NS,
            },
            nbns: udp && c.resp.port == NETBIOS_NS,
            multicast: c.resp.ip().is_multicast(),
            buf: [Vec::new(), Vec::new()],
            msg_ts: [0; 2],
            bytes: 0,
            dead: false,
            ended: [false; 2],
            pending_query: None,
            queries: Table::default(),
            replies: Table::default(),
            held_bytes: 0,
            answered: VecDeque::new(),
            next_key: 1,
            session: None,
            untracked_start: 0,
        }
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// The fields of a query: the header's, and the (last) question's with its flags only
    /// when a question was read (Zeek's `dns_request`).
    fn query_fields(&self, m: &Message, out: &mut Emitter) -> Fields {
        let h = m.header;
        let mut f = self.common_fields(m, out.fields_with_room(EXCHANGE_ROOM));
        if let Some(q) = &m.question {
            // Copied from the message (a short name into the value itself, no allocation).
            let name = match self.nbns.then(|| wire::decode_netbios(&q.name)).flatten() {
                Some(decoded) => Value::owned(decoded),
                None => Value::text(&q.name),
            };
            let qtype_name = if self.nbns && q.qtype == wire::rtype::SRV {
                "NBSTAT".into()
            } else {
                wire::type_name(q.qtype)
            };
            f.set("query", name);
            f.set("qclass", Value::U64(u64::from(q.qclass)));
            f.set(
                "qclass_name",
                Value::text(wire::class_name(q.qclass).as_bytes()),
            );
            f.set("qtype", Value::U64(u64::from(q.qtype)));
            f.set("qtype_name", Value::text(qtype_name.as_bytes()));
            f.set("RD", Value::Bool(h.rd));
            f.set("TC", Value::Bool(h.tc));
            f.set("Z", Value::U64(u64::from(h.z)));
        }
        f
    }

    /// The header's fields, set in `f` (an empty list, for its room).
    fn common_fields(&self, m: &Message, mut f: Fields) -> Fields {
        let h = m.header;
        f.set("trans_id", Value::U64(u64::from(h.id)));
        f.set("opcode", Value::U64(u64::from(h.opcode)));
        f.set(
            "opcode_name",
            Value::text(wire::opcode_name(h.opcode, self.ctx.netbios).as_bytes()),
        );
        f
    }

    /// The fields of a response (without `query`, which depends on what it pairs with).
    fn response_fields(&self, m: &mut Message, out: &mut Emitter) -> Fields {
        let h = m.header;
        let mut f = self.common_fields(m, out.fields_with_room(RESPONSE_ROOM));
        f.set("rcode", Value::U64(u64::from(h.rcode)));
        f.set(
            "rcode_name",
            Value::text(wire::rcode_name(h.rcode).as_bytes()),
        );
        f.set("AA", Value::Bool(h.aa));
        f.set("RA", Value::Bool(h.ra));
        f.set("truncated", Value::Bool(h.tc));
        f.set("total_answers", Value::U64(u64::from(h.ancount)));
        f.set("handled_answers", Value::U64(m.replies.len() as u64));
        // Moved into the list, not copied: the message is not read for them again.
        let mut answers = Vec::with_capacity(m.replies.len());
        let mut ttls = Vec::with_capacity(m.replies.len());
        for (t, ttl) in m.take_answers() {
            answers.push(t);
            ttls.push(u64::from(ttl));
        }
        if !answers.is_empty() {
            f.set("answers", Value::List(answers));
            f.set("TTLs", Value::Counts(ttls));
        }
        // Zeek's `dns_rejected` (a response with a question and no records at all) and its
        // error-without-question rule; an update's zone is not a question.
        let no_records = h.ancount == 0 && h.nscount == 0 && h.arcount == 0;
        let rejected = (m.questions > 0 && no_records) || (h.rcode != 0 && h.qdcount == 0);
        f.set("rejected", Value::Bool(rejected));
        f
    }

    fn remember_answered(&mut self, id: u16) {
        if self.answered.len() >= MAX_ANSWERED {
            self.answered.pop_front();
        }
        self.answered.push_back(id);
    }

    /// Writes a held response alone.
    fn write_alone(&mut self, r: Held, out: &mut Emitter) {
        out.weird(if self.answered.contains(&r.id) {
            "dns_duplicate_response"
        } else {
            "dns_response_without_query"
        });
        let mut fields = r.fields;
        if let Some(o) = r.owner {
            fields.set("query", Value::Text(o));
        }
        let key = MatchKey::Id(r.key);
        out.emit(Event::ResponseStart {
            ts: r.start,
            key,
            fields,
        });
        out.emit(Event::ResponseEnd {
            ts: r.end,
            key,
            fields: Fields::default(),
            complete: r.complete,
        });
    }

    fn write_held(&mut self, held: Vec<Held>, out: &mut Emitter) {
        for r in held {
            self.held_bytes = self.held_bytes.saturating_sub(r.size);
            self.write_alone(r, out);
        }
    }

    /// Everything waiting is given up: held responses are written alone, waiting queries
    /// stay unanswered (the matcher writes them when the flow ends).
    fn give_up_waiting(&mut self, out: &mut Emitter) {
        let held = self.replies.drain();
        self.write_held(held, out);
        self.held_bytes = 0;
        self.pending_query = None;
        self.queries = Table::default();
        self.answered.clear();
    }

    /// UDP: whether Zeek's session timer expired the flow between its last message and `ts`
    /// (timers at the first message plus multiples of the timeout; one that finds the flow
    /// idle for the timeout minus a second removes it). A new session starts at `ts`.
    fn expire(&mut self, ts: Ts, out: &mut Emitter) {
        if self.stream {
            return;
        }
        let Some((first, last)) = self.session else {
            self.session = Some((ts, ts));
            return;
        };
        let since = last.saturating_sub(first);
        let next = first + (since / SESSION_TIMEOUT + 1) * SESSION_TIMEOUT;
        let idle = SESSION_TIMEOUT - 1_000_000_000;
        let expired =
            (next <= ts && next - last >= idle) || next.saturating_add(SESSION_TIMEOUT) <= ts;
        if expired {
            self.give_up_waiting(out);
            self.session = Some((ts, ts));
        } else {
            self.session = Some((first, ts.max(last)));
        }
    }

    fn message(&mut self, start: Ts, end: Ts, bytes: &[u8], out: &mut Emitter) {
        if self.dead {
            return;
        }
        let mut m = match wire::parse(bytes, self.ctx) {
            Ok(m) => m,
            Err(e) => {
                out.weird(e.weird());
                return;
            }
        };
        for w in &m.weirds {
            out.weird(w.weird());
        }
        if let Some(e) = m.error {
            out.weird(e.weird());
        }
        let h = m.header;
        let complete = !m.cut;
        if !wire::tracked(h.opcode) {
            // Zeek logs nothing of these: paired by id for the JSON lines only.
            let key = MatchKey::Id(UNTRACKED | u64::from(h.id));
            if h.qr {
                let f = self.response_fields(&mut m, out);
                let start = start.max(self.untracked_start);
                emit_response(out, start, end.max(start), key, f, complete);
            } else {
                let f = self.query_fields(&m, out);
                self.untracked_start = start;
                emit_request(out, start, end, key, f, complete);
            }
            return;
        }
        self.expire(start, out);
        // The first record's owner, taken (its reply is not read again for it).
        let owner = m.replies.first_mut().map(|r| std::mem::take(&mut r.owner));
        if self.multicast {
            // Every message is its own record (Zeek: replies come on other connections).
            if h.qr {
                let mut f = self.response_fields(&mut m, out);
                if let Some(o) = owner {
                    f.set("query", Value::Text(o));
                }
                let key = MatchKey::Id(self.key());
                emit_response(out, start, end, key, f, complete);
            } else {
                let f = self.query_fields(&m, out);
                emit_request(out, start, end, MatchKey::NoResponse, f, complete);
            }
        } else if h.qr {
            self.response(&mut m, start, end, owner, complete, out);
        } else {
            self.query(&m, start, end, complete, out);
        }
        if m.error == Some(Error::TooManyQuestions) && self.bytes <= VIOLATION_WINDOW {
            // Zeek's analyzer violation: DNS is removed from the flow.
            out.weird("dns_analysis_stopped");
            let held = self.replies.drain();
            self.write_held(held, out);
            self.dead = true;
        }
    }

    fn query(&mut self, m: &Message, start: Ts, end: Ts, complete: bool, out: &mut Emitter) {
        let id = m.header.id;
        let f = self.query_fields(m, out);
        let asked = m.question.is_some();
        if let Some(r) = self.replies.pop(id) {
            // Its response came first: one exchange, written now.
            self.held_bytes = self.held_bytes.saturating_sub(r.size);
            let key = MatchKey::Id(r.key);
            emit_request(out, start, end, key, f, complete);
            let mut rf = r.fields;
            if let (false, Some(o)) = (asked, r.owner) {
                rf.set("query", Value::Text(o));
            }
            // The response was captured first; its span cannot begin before its query's.
            emit_response(out, start, end, key, rf, r.complete);
            self.remember_answered(id);
            return;
        }
        let key = self.key();
        emit_request(out, start, end, MatchKey::Id(key), f, complete);
        let slot = Slot {
            key,
            id,
            asked,
            start,
        };
        if self.pending_query.is_none() {
            self.pending_query = Some(slot);
        } else {
            // Queries given up here stay unanswered.
            let _ = self.queries.put(id, slot);
        }
    }

    fn response(
        &mut self,
        m: &mut Message,
        start: Ts,
        end: Ts,
        owner: Option<Text>,
        complete: bool,
        out: &mut Emitter,
    ) {
        let id = m.header.id;
        let mut f = self.response_fields(m, out);
        let slot = match self.pending_query {
            Some(q) if q.id == id => {
                self.pending_query = self.queries.pop(id).or_else(|| self.queries.pop_any());
                Some(q)
            }
            _ => self.queries.pop(id),
        };
        if let Some(q) = slot {
            if let (false, Some(o)) = (q.asked, owner) {
                f.set("query", Value::Text(o));
            }
            let start = start.max(q.start);
            emit_response(out, start, end.max(start), MatchKey::Id(q.key), f, complete);
            self.remember_answered(id);
            return;
        }
        let size = bytes_of(&f) + owner.as_ref().map_or(0, |o| o.len());
        let held = Held {
            id,
            key: self.key(),
            start,
            end,
            fields: f,
            owner,
            complete,
            size,
        };
        self.held_bytes += size;
        let dropped = self.replies.put(id, held);
        self.write_held(dropped, out);
        if self.held_bytes > MAX_HELD_BYTES {
            out.weird("dns_held_responses_flushed");
            let held = self.replies.drain();
            self.write_held(held, out);
            self.held_bytes = 0;
        }
    }

    /// TCP: adds stream bytes of direction `d`, handing on each whole message.
    fn framed(&mut self, d: usize, ts: Ts, mut rest: &[u8], out: &mut Emitter) {
        while !rest.is_empty() {
            let mut b = std::mem::take(&mut self.buf[d]);
            if b.is_empty() {
                self.msg_ts[d] = ts;
                // Fast path: whole messages in the data itself are parsed in place.
                if let Some(len) = be_u16(rest, 0).map(usize::from)
                    && rest.len() >= 2 + len
                {
                    self.message(ts, ts, &rest[2..2 + len], out);
                    rest = &rest[2 + len..];
                    self.buf[d] = b;
                    continue;
                }
            }
            if b.len() < 2 {
                let n = (2 - b.len()).min(rest.len());
                b.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
            if let Some(len) = be_u16(&b, 0) {
                let want = 2 + usize::from(len);
                let n = (want - b.len()).min(rest.len());
                b.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if b.len() == want {
                    self.message(self.msg_ts[d], ts, &b[2..], out);
                    b.clear();
                }
            }
            self.buf[d] = b;
        }
    }
}

/// Rough size of a response's fields, for the held-bytes bound.
fn bytes_of(f: &Fields) -> usize {
    f.iter()
        .map(|(_, v)| match v {
            Value::Text(t) => t.len(),
            Value::List(l) => l.iter().map(|x| x.len() + 8).sum(),
            Value::Counts(c) => c.len() * 8,
            _ => 8,
        })
        .sum::<usize>()
        + 64
}

fn emit_request(out: &mut Emitter, start: Ts, end: Ts, key: MatchKey, f: Fields, complete: bool) {
    out.emit(Event::RequestStart {
        ts: start,
        key,
        fields: f,
    });
    out.emit(Event::RequestEnd {
        ts: end,
        key,
        fields: Fields::default(),
        complete,
    });
}

fn emit_response(out: &mut Emitter, start: Ts, end: Ts, key: MatchKey, f: Fields, complete: bool) {
    out.emit(Event::ResponseStart {
        ts: start,
        key,
        fields: f,
    });
    out.emit(Event::ResponseEnd {
        ts: end,
        key,
        fields: Fields::default(),
        complete,
    });
}

impl Parser for Dns {
    fn data(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter) {
        self.bytes += data.len() as u64;
        if !self.stream {
            self.message(ts, ts, data, out);
            return;
        }
        self.framed(dir.idx(), ts, data, out);
    }

    fn gap(&mut self, _dir: Dir, _ts: Ts, _len: u64, out: &mut Emitter) {
        // Zeek's framing does not notice a gap: the next bytes continue the message being
        // assembled, and framing is lost if the gap was not at a message boundary.
        if self.stream && !self.dead {
            out.weird("dns_tcp_gap");
        }
    }

    fn end(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let d = dir.idx();
        let b = std::mem::take(&mut self.buf[d]);
        if b.len() > 2 {
            // What arrived of the last message is read as far as it goes.
            out.weird("dns_tcp_message_cut_short");
            self.message(self.msg_ts[d], ts, &b[2..], out);
        }
        self.ended[d] = true;
        if self.ended[0] && self.ended[1] {
            let held = self.replies.drain();
            self.write_held(held, out);
            self.held_bytes = 0;
        }
    }

    fn state(&self) -> ParserState {
        if self.dead {
            ParserState::GaveUp
        } else {
            ParserState::Active
        }
    }
}
