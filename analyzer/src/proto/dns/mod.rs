//! DNS over UDP and TCP.
//!
//! Each message becomes one event pair: a query (QR clear) a request, a response a response,
//! both keyed by the transaction id ([`MatchKey::Id`]) so the matcher pairs them per
//! connection (the 5-tuple) whatever their order; a second response to an answered id, a
//! response to no query and a query never answered become exchanges of their own. The wire
//! format is parsed by [`wire`] (bounded, lenient; see there); fields and `dns.log` follow
//! Zeek's DNS scripts (see `docs/dns.md`).
//!
//! - UDP: each `data` call is one datagram, one message (the pipeline's datagram contract).
//! - TCP: messages carry a two-byte length prefix (RFC 1035 §4.2.2); several per connection,
//!   split across or sharing `data` calls. A message is buffered until whole; the length is
//!   16 bits, so at most 65,537 bytes are held per direction. A gap loses the framing: that
//!   direction is not parsed further (both directions lost: the parser gives up).
//! - A message that is not DNS (shorter than a header, or malformed) is reported as a weird
//!   and, when not even a header is there, skipped; one whose header parsed but whose body
//!   stopped early still yields its events with what was parsed.
//!
//! The module's files: [`wire`] (the message format), `probe` (detection), `zeek` (`dns.log`
//! and the report summary), and this file: the connection — framing, matching ids, duplicate
//! and unsolicited responses — and the [`Parser`] implementation.

mod probe;
pub mod wire;
mod zeek;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::l7::{Emitter, Event, MatchKey, Parser, ParserState, Protocol};
use crate::model::{ConnInfo, Dir, Fields, Transport, Ts, Value};
use crate::read::be_u16;
use wire::Error;

pub use self::zeek::ZEEK_LOG;

/// Queries remembered per connection to recognise duplicate and unsolicited responses
/// (oldest forgotten first; the matcher keeps the records themselves).
pub const MAX_OUTSTANDING: usize = crate::l7::MAX_OPEN;
/// Answered ids remembered per connection, to call a further response a duplicate.
pub const MAX_ANSWERED: usize = 64;
/// NetBIOS name service port: type 33 is NBSTAT there, not SRV.
const NETBIOS_NS: u16 = 137;

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

/// The DNS parser of one connection.
#[derive(Debug)]
pub struct Dns {
    /// TCP: length-prefixed messages in a byte stream.
    stream: bool,
    /// NetBIOS name service (port 137).
    nbstat: bool,
    /// TCP: the message being assembled per direction, with its length prefix.
    buf: [Vec<u8>; 2],
    /// TCP: when the message being assembled began.
    msg_ts: [Ts; 2],
    /// TCP: framing lost after a gap.
    lost: [bool; 2],
    /// Ids of queries not answered yet, oldest first.
    outstanding: VecDeque<u16>,
    /// Ids answered recently, oldest first.
    answered: VecDeque<u16>,
}

impl Dns {
    /// A parser for a connection (its transport decides the framing).
    pub fn new(c: &ConnInfo) -> Self {
        Dns {
            stream: c.transport == Transport::Tcp,
            nbstat: c.resp.port == NETBIOS_NS,
            buf: [Vec::new(), Vec::new()],
            msg_ts: [0; 2],
            lost: [false; 2],
            outstanding: VecDeque::new(),
            answered: VecDeque::new(),
        }
    }

    fn message(&mut self, start: Ts, end: Ts, bytes: &[u8], out: &mut Emitter) {
        let m = match wire::parse(bytes, self.nbstat) {
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
        let key = MatchKey::Id(u64::from(h.id));
        // Cut short (snapshot length, a lying count): the exchange says so.
        let complete = m.error != Some(Error::Truncated);
        let mut f = Fields::default();
        f.set("trans_id", Value::U64(u64::from(h.id)));
        f.set("opcode", Value::U64(u64::from(h.opcode)));
        f.set(
            "opcode_name",
            Value::text(wire::opcode_name(h.opcode).as_bytes()),
        );
        if let Some(q) = &m.question {
            let qtype_name = if self.nbstat && q.qtype == wire::rtype::SRV {
                "NBSTAT".into()
            } else {
                wire::type_name(q.qtype)
            };
            f.set("query", Value::Text(q.name.clone()));
            f.set("qclass", Value::U64(u64::from(q.qclass)));
            f.set(
                "qclass_name",
                Value::text(wire::class_name(q.qclass).as_bytes()),
            );
            f.set("qtype", Value::U64(u64::from(q.qtype)));
            f.set("qtype_name", Value::text(qtype_name.as_bytes()));
        }
        if !h.qr {
            f.set("RD", Value::Bool(h.rd));
            f.set("TC", Value::Bool(h.tc));
            f.set("Z", Value::U64(u64::from(h.z)));
            if self.outstanding.len() >= MAX_OUTSTANDING {
                self.outstanding.pop_front();
            }
            self.outstanding.push_back(h.id);
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
            return;
        }
        match self.outstanding.iter().position(|&i| i == h.id) {
            Some(pos) => {
                self.outstanding.remove(pos);
                if self.answered.len() >= MAX_ANSWERED {
                    self.answered.pop_front();
                }
                self.answered.push_back(h.id);
            }
            None if self.answered.contains(&h.id) => out.weird("dns_duplicate_response"),
            None => out.weird("dns_response_without_query"),
        }
        f.set("rcode", Value::U64(u64::from(h.rcode)));
        f.set(
            "rcode_name",
            Value::text(wire::rcode_name(h.rcode).as_bytes()),
        );
        f.set("AA", Value::Bool(h.aa));
        f.set("RA", Value::Bool(h.ra));
        f.set("truncated", Value::Bool(h.tc));
        f.set("total_answers", Value::U64(u64::from(h.ancount)));
        if !m.answers.is_empty() {
            f.set("answers", Value::List(m.answers));
            f.set(
                "TTLs",
                Value::Counts(m.ttls.iter().map(|&t| u64::from(t)).collect()),
            );
        }
        // Zeek: a response with a question and no records at all, or an error without a
        // question, is a rejection.
        let no_records = h.ancount == 0 && h.nscount == 0 && h.arcount == 0;
        let rejected = (m.question.is_some() && no_records) || (h.rcode != 0 && h.qdcount == 0);
        f.set("rejected", Value::Bool(rejected));
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

impl Parser for Dns {
    fn data(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter) {
        if !self.stream {
            self.message(ts, ts, data, out);
            return;
        }
        let d = dir.idx();
        if !self.lost[d] {
            self.framed(d, ts, data, out);
        }
    }

    fn gap(&mut self, dir: Dir, _ts: Ts, _len: u64, out: &mut Emitter) {
        let d = dir.idx();
        if self.stream && !self.lost[d] {
            // Message boundaries are gone with the bytes: nothing later in this direction
            // can be framed with confidence.
            out.weird("dns_tcp_gap");
            self.lost[d] = true;
            self.buf[d] = Vec::new();
        }
    }

    fn end(&mut self, dir: Dir, _ts: Ts, out: &mut Emitter) {
        let d = dir.idx();
        if !self.buf[d].is_empty() {
            out.weird("dns_tcp_message_cut_short");
            self.buf[d] = Vec::new();
        }
    }

    fn state(&self) -> ParserState {
        if self.lost[0] && self.lost[1] {
            ParserState::GaveUp
        } else {
            ParserState::Active
        }
    }
}
