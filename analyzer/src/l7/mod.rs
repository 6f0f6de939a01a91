//! The contract between the connection machinery and the protocol parsers: the [`Parser`]
//! trait, the [`Event`]s parsers emit, detection probes, the [`Protocol`] description a
//! protocol registers, the types of its Zeek log, and the [`Matcher`] that turns events into
//! exchanges. Protocols ([`crate::proto`]) build on this module; it knows none of them.
//!
//! A parser receives a connection's reassembled bytes per direction ([`Parser::data`]), gaps
//! where bytes were lost ([`Parser::gap`], Zeek's "undelivered"), and the end of each direction
//! ([`Parser::end`]). It emits [`Event`]s — request/response starts and ends with their fields —
//! which the [`Matcher`] turns into exchanges. Adding a protocol means one module with a
//! [`Protocol`] description, and one line in [`crate::proto::PROTOCOLS`].
//!
//! # Streams and datagrams
//!
//! On TCP (and socket payload), `data` calls carry a direction's reassembled byte stream cut
//! at arbitrary points: message boundaries are the parser's business. On UDP, each `data`
//! call is exactly one datagram's payload, whole (as captured: a snapshot length may have
//! cut it), so message boundaries are preserved; empty datagrams are not delivered, `gap` is
//! never called, and `end` comes for both directions when the flow ends (idle timeout or end
//! of input). Client and server of a UDP flow come from ports (a well-known or registered
//! port on one side only), else the first sender is taken for the client; a probe may
//! answer [`Probe::Reversed`] when the first message shows the opposite.

pub mod harness;
pub mod matching;
pub mod summary;
pub mod zeek;

pub use matching::{MAX_OPEN, MAX_PIPELINED, MatchStats, Matcher};
pub use zeek::{ZVal, ZeekLog};

use crate::model::{ConnInfo, Dir, Exchange, Fields, Summary, Transport, Ts};

/// Bytes per direction kept for protocol detection (on UDP: of the first datagram).
pub const PROBE_BYTES: usize = 2048;

/// What [`Parser::heap_bytes`] says for parsers that do not estimate their memory.
pub const DEFAULT_PARSER_HEAP: usize = 1024;

/// How a response finds its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchKey {
    /// In order: the oldest request without a response (HTTP/1, Redis, SQL protocols).
    Fifo,
    /// By an identifier (DNS id, HTTP/2 stream id).
    Id(u64),
    /// A request the protocol says gets no response (Redis commands under `CLIENT REPLY
    /// OFF`): no response pairs with it, and its exchange is written as soon as it ends.
    NoResponse,
}

/// What a parser reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A request began (its head is parsed): a new transaction.
    RequestStart {
        /// Time of its first byte.
        ts: Ts,
        /// Matching key.
        key: MatchKey,
        /// Fields known from the head.
        fields: Fields,
    },
    /// The request in progress ended.
    RequestEnd {
        /// Time of its last byte.
        ts: Ts,
        /// Matching key.
        key: MatchKey,
        /// Fields known at the end (body length ...).
        fields: Fields,
        /// False when a gap or the end of the stream cut it short.
        complete: bool,
    },
    /// An informational (interim) response, e.g. HTTP 100 Continue.
    Info {
        /// Time of its first byte.
        ts: Ts,
        /// Matching key.
        key: MatchKey,
        /// Fields.
        fields: Fields,
    },
    /// A final response began.
    ResponseStart {
        /// Time of its first byte.
        ts: Ts,
        /// Matching key.
        key: MatchKey,
        /// Fields known from the head.
        fields: Fields,
    },
    /// The response in progress ended: the transaction is complete.
    ResponseEnd {
        /// Time of its last byte.
        ts: Ts,
        /// Matching key.
        key: MatchKey,
        /// Fields known at the end.
        fields: Fields,
        /// False when a gap or the end of the stream cut it short.
        complete: bool,
    },
}

/// Where a parser sends its events and anomalies.
#[derive(Debug, Default)]
pub struct Emitter {
    /// Events, in order.
    pub events: Vec<Event>,
    /// Named anomalies (Zeek calls them "weirds"), counted per name.
    pub weirds: Vec<&'static str>,
    /// Empty field lists with room, for the next events: an event's fields are merged into
    /// its exchange's, and their emptied list comes back here ([`Emitter::recycle`]).
    spare: Vec<Fields>,
}

/// Empty field lists an [`Emitter`] keeps for reuse, at most.
const SPARE_FIELDS: usize = 4;
/// The largest field list (in fields it has room for) an [`Emitter`] keeps for reuse: twice
/// the room a new list gets, so that a message whose list a parser makes with more room (a
/// DNS response's 13 fields) or that grew once is reused, not freed and made again for every
/// message. A list reused may become an exchange's, held until the exchange is written:
/// bigger ones would make open exchanges hold more memory than their fields need.
const SPARE_FIELDS_ROOM: usize = 2 * crate::model::FIRST_ROOM;

impl Emitter {
    /// Emits an event.
    pub fn emit(&mut self, e: Event) {
        self.events.push(e);
    }
    /// Notes an anomaly.
    pub fn weird(&mut self, name: &'static str) {
        self.weirds.push(name);
    }
    /// An empty field list for an event: one given back earlier when there is one (its room
    /// is still there, and its memory likely still in the cache), else a new one.
    pub fn fields(&mut self) -> Fields {
        self.spare.pop().unwrap_or_default()
    }
    /// An empty field list with room for `n` fields: a spare one if it has that room, else a
    /// new one made with it (a list that will become an exchange's; growing a spare to the
    /// room would copy it, a reallocation per exchange).
    pub fn fields_with_room(&mut self, n: usize) -> Fields {
        match self.spare.last() {
            Some(f) if f.capacity() >= n => self.spare.pop().unwrap_or_default(),
            _ => Fields::with_room(n),
        }
    }
    /// Gives a field list back for reuse (emptied here); lists with no room or much room,
    /// and any beyond a few, are freed.
    pub fn recycle(&mut self, f: Fields) {
        keep_spare(&mut self.spare, f);
    }
}

/// [`Emitter::recycle`] on the emitter's spare lists alone (for the matcher, which holds its
/// events at the same time).
fn keep_spare(spare: &mut Vec<Fields>, mut f: Fields) {
    let room = f.capacity();
    if room > 0 && room <= SPARE_FIELDS_ROOM && spare.len() < SPARE_FIELDS {
        f.clear();
        spare.push(f);
    }
}

/// Parser verdict on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParserState {
    /// Still parsing.
    Active,
    /// The connection left the protocol (CONNECT tunnel, Upgrade): nothing more to parse.
    Finished,
    /// The parser lost sync or met a violation and gave the connection up.
    GaveUp,
}

/// A protocol parser for one connection.
pub trait Parser: Send {
    /// Bytes in direction `dir`, first byte seen at `ts`.
    fn data(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter);
    /// `len` bytes in direction `dir` were lost.
    fn gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Emitter);
    /// Direction `dir` ended (FIN, RST, or end of capture).
    fn end(&mut self, dir: Dir, ts: Ts, out: &mut Emitter);
    /// Whether the parser still wants data.
    fn state(&self) -> ParserState;
    /// Heap bytes the parser holds now (buffers, queues of pending requests), roughly: what
    /// the memory budget counts for it. Called after every `data`, `gap` and `end`, so it must
    /// be cheap. The default suits parsers that hold little beyond their own struct.
    fn heap_bytes(&self) -> usize {
        DEFAULT_PARSER_HEAP
    }
    /// Once the parser is [`ParserState::Finished`]: another protocol's parser for the rest
    /// of the connection, when the protocol changed in-band (HTTP/1 `Upgrade: h2c` and 101).
    /// Taken once; the default is none (the connection is only counted from then on).
    fn handover(&mut self) -> Option<Handover> {
        None
    }
}

/// The rest of a connection, handed from one protocol's parser to another's when the
/// protocol changes in-band (HTTP/1's `Upgrade: h2c` and `101 Switching Protocols`). The old
/// parser names what the connection switched to; the registry finds the protocol that
/// accepts that name ([`Protocol::upgrade`]), so neither protocol knows the other.
#[derive(Debug)]
pub struct Handover {
    /// What the connection switched to, as the old protocol names it (an HTTP upgrade token
    /// such as `h2c`).
    pub to: &'static str,
    /// What the old protocol negotiated.
    pub upgrade: Upgrade,
    /// Bytes that arrived after the old protocol's last message in the `data` call that
    /// ended it (direction as the parser sees it, and their time): the new parser's first.
    pub rest: Option<(Dir, Ts, Vec<u8>)>,
}

/// The message that asked for an in-band protocol change, as the old protocol parsed it. The
/// new protocol's parser takes it over (HTTP/2 makes the upgrading request its stream 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// The request's first byte.
    pub start: Ts,
    /// Its last byte.
    pub end: Ts,
    /// Its fields as the old parser reported them (method, uri, host, ...).
    pub fields: Fields,
    /// Parameters of the switch the request carried, raw (HTTP/2: the `HTTP2-Settings`
    /// header's base64url SETTINGS payload).
    pub params: Option<Vec<u8>>,
    /// The answer that confirmed the switch ended with a CR at the end of a segment: an LF
    /// at the start of the server's next bytes belongs to it.
    pub server_skip_lf: bool,
}

/// A protocol's acceptance of connections that switch to it in-band.
#[derive(Debug)]
pub struct UpgradeTo {
    /// The name the old protocol uses for it (HTTP upgrade token).
    pub token: &'static str,
    /// A parser for the rest of the connection, set up with what was negotiated.
    pub parser: fn(&ConnInfo, Upgrade) -> Box<dyn Parser>,
}

/// What a probe concludes from a connection's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// This protocol.
    Yes,
    /// This protocol, but the endpoint taken for the client is the server: its first
    /// message is an answer (a DNS response seen before any query between two well-known
    /// ports). Honoured where roles are a guess (UDP, TCP without a handshake); elsewhere
    /// it counts as [`Probe::Yes`].
    Reversed,
    /// Not this protocol.
    No,
    /// Cannot tell yet.
    NeedMore,
}

/// The first bytes of a connection, for protocol detection.
///
/// On TCP, each side is the beginning of that direction's stream (up to
/// [`PROBE_BYTES`]); on UDP, it is that direction's first datagram (cut to
/// the same bound), so a probe sees one whole message.
#[derive(Clone, Copy, Debug)]
pub struct ProbeInput<'a> {
    /// First bytes the client sent (may be empty).
    pub to_server: &'a [u8],
    /// First bytes the server sent (may be empty).
    pub to_client: &'a [u8],
    /// Server port.
    pub server_port: u16,
    /// Transport.
    pub transport: Transport,
}

/// A protocol the analyzer understands.
#[derive(Debug)]
pub struct Protocol {
    /// Name used in outputs (`http`, `mysql`, ...).
    pub name: &'static str,
    /// Transports it runs on.
    pub transports: &'static [Transport],
    /// Ports where it is usual; a hint for detection, never a verdict on its own.
    pub ports: &'static [u16],
    /// Content-based detection.
    pub probe: fn(&ProbeInput<'_>) -> Probe,
    /// A parser for a new connection (its transport says whether `data` carries a stream
    /// or datagrams).
    pub new_parser: fn(&ConnInfo) -> Box<dyn Parser>,
    /// Zeek log this protocol writes with `--format zeek`, if any.
    pub zeek: Option<&'static ZeekLog>,
    /// In-band switches to this protocol it accepts, if any.
    pub upgrade: Option<UpgradeTo>,
    /// Summary used by reports: the exchange's "endpoint" (e.g. `GET /users/{id}`) and
    /// whether it failed.
    pub summarize: fn(&Exchange) -> Summary,
}

/// Whether a URL holds a parameter value that redaction overwrote (what [`shown_url`]
/// rewrites).
fn has_redacted_param(v: &[u8]) -> bool {
    v.windows(2).any(|w| w == b"=*")
}

/// [`shown_url`] as a field value, from borrowed bytes: copied once, and only a URL with a
/// redacted parameter goes through the rewrite.
pub fn shown_url_value(v: &[u8]) -> crate::model::Value {
    if has_redacted_param(v) {
        crate::model::Value::owned(shown_url(v.to_vec()))
    } else {
        crate::model::Value::text(v)
    }
}

/// A URL as logs show it: query and fragment parameter values that redaction overwrote (made
/// of nothing but `*`, by juno-record or `--redact`) appear as `[redacted]`.
pub fn shown_url(v: Vec<u8>) -> Vec<u8> {
    if !has_redacted_param(&v) {
        return v;
    }
    match std::str::from_utf8(&v) {
        Ok(s) => match juno_redact::mark_url(s) {
            std::borrow::Cow::Owned(o) => o.into_bytes(),
            std::borrow::Cow::Borrowed(_) => v,
        },
        Err(_) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FIRST_ROOM, Value};

    #[test]
    fn a_list_with_room_is_a_spare_only_when_the_spare_has_the_room() {
        let mut out = Emitter::default();
        let mut f = out.fields();
        f.set("a", Value::U64(1));
        let at = f.as_ptr();
        out.recycle(f);
        // More room than a spare has: a new list with that room, the spare left alone.
        let big = out.fields_with_room(FIRST_ROOM + 1);
        assert!(big.capacity() > FIRST_ROOM);
        assert!(big.is_empty());
        assert_ne!(big.as_ptr(), at);
        assert_eq!(out.spare.len(), 1);
        // Room a spare has: the spare.
        let small = out.fields_with_room(FIRST_ROOM);
        assert_eq!(small.as_ptr(), at);
        assert!(small.is_empty());
        assert!(out.spare.is_empty());
    }

    #[test]
    fn field_lists_given_back_are_reused_emptied_and_bounded() {
        let mut out = Emitter::default();
        // Nothing given back yet: a new list, with no room until its first field.
        assert_eq!(out.fields().capacity(), 0);
        let mut f = out.fields();
        f.set("a", Value::U64(1));
        let at = f.as_ptr();
        out.recycle(f);
        let g = out.fields();
        assert_eq!(g.as_ptr(), at, "the list given back is handed out again");
        assert!(g.is_empty(), "emptied");
        assert_eq!(g.capacity(), FIRST_ROOM);
        // Lists with no room, or more room than SPARE_FIELDS_ROOM, are not kept; one that
        // grew once is.
        out.recycle(Fields::default());
        let mut big = Fields::default();
        for name in ["a", "b", "c", "d", "e", "f", "g", "h", "i"] {
            big.set(name, Value::U64(0));
        }
        assert!(big.capacity() > FIRST_ROOM && big.capacity() <= SPARE_FIELDS_ROOM);
        let at = big.as_ptr();
        out.recycle(big);
        let g = out.fields_with_room(SPARE_FIELDS_ROOM);
        assert_eq!(g.as_ptr(), at, "a list that grew once is kept");
        let mut bigger = Fields::with_room(SPARE_FIELDS_ROOM + 1);
        bigger.set("a", Value::U64(0));
        out.recycle(bigger);
        assert!(out.spare.is_empty());
        // At most a few are kept.
        for _ in 0..SPARE_FIELDS + 3 {
            let mut f = Fields::default();
            f.set("a", Value::U64(1));
            out.recycle(f);
        }
        assert_eq!(out.spare.len(), SPARE_FIELDS);
    }
}
