//! Protocol parsers: the [`Parser`] trait they implement, the events they emit, and the
//! registry that detects which one a connection speaks.
//!
//! A parser receives a connection's reassembled bytes per direction ([`Parser::data`]), gaps
//! where bytes were lost ([`Parser::gap`], Zeek's "undelivered"), and the end of each direction
//! ([`Parser::end`]). It emits [`Event`]s — request/response starts and ends with their fields —
//! which the matcher ([`crate::matching`]) turns into exchanges. Adding a protocol means one
//! module with a [`Protocol`] description, and one line in [`PROTOCOLS`].
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

pub mod dns;
pub mod http1;
pub mod http2;
pub mod inflate;
pub mod mysql;
pub mod postgresql;
pub mod redis;
#[cfg(test)]
mod testing;

use crate::decode::Transport;

/// Nanoseconds since the Unix epoch.
pub type Ts = u64;

/// Which way bytes flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client (originator) to server (responder).
    ToServer,
    /// Server to client.
    ToClient,
}

impl Dir {
    /// Index 0 for client→server, 1 for server→client.
    pub fn idx(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }
    /// The other direction.
    pub fn flip(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
}

/// A protocol field value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Text as it appeared on the wire (not necessarily UTF-8).
    Text(Vec<u8>),
    /// Unsigned number.
    U64(u64),
    /// Signed number.
    I64(i64),
    /// List of unsigned numbers.
    Counts(Vec<u64>),
    /// Boolean.
    Bool(bool),
    /// List of texts.
    List(Vec<Vec<u8>>),
}

impl Value {
    /// A text value from a string.
    pub fn text(s: impl AsRef<[u8]>) -> Value {
        Value::Text(s.as_ref().to_vec())
    }
}

/// Protocol-specific fields of a message, in the order they were set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(&'static str, Value)>);

impl Fields {
    /// Sets a field, replacing an earlier value of the same name.
    pub fn set(&mut self, name: &'static str, v: Value) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = v,
            None => self.0.push((name, v)),
        }
    }
    /// Looks a field up.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
    /// Adds all of `other`, replacing same-named fields.
    pub fn merge(&mut self, other: Fields) {
        for (n, v) in other.0 {
            self.set(n, v);
        }
    }
    /// A text field as bytes.
    pub fn text(&self, name: &str) -> Option<&[u8]> {
        match self.get(name) {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        }
    }
    /// A numeric field.
    pub fn u64(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Some(Value::U64(v)) => Some(*v),
            _ => None,
        }
    }
}

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
}

impl Emitter {
    /// Emits an event.
    pub fn emit(&mut self, e: Event) {
        self.events.push(e);
    }
    /// Notes an anomaly.
    pub fn weird(&mut self, name: &'static str) {
        self.weirds.push(name);
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
    /// Once the parser is [`ParserState::Finished`]: another protocol's parser for the rest
    /// of the connection, when the protocol changed in-band (HTTP/1 `Upgrade: h2c` and 101).
    /// Taken once; the default is none (the connection is only counted from then on).
    fn handover(&mut self) -> Option<Handover> {
        None
    }
}

/// The rest of a connection, handed from one protocol's parser to another's.
pub struct Handover {
    /// The protocol the connection continues in.
    pub proto: &'static Protocol,
    /// Its parser, already set up with what the old protocol negotiated.
    pub parser: Box<dyn Parser>,
    /// Bytes that arrived after the old protocol's last message in the `data` call that
    /// ended it (direction as the parser sees it, and their time): the new parser's first.
    pub rest: Option<(Dir, Ts, Vec<u8>)>,
}

impl std::fmt::Debug for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handover")
            .field("proto", &self.proto.name)
            .field("rest", &self.rest.as_ref().map(|(d, t, b)| (d, t, b.len())))
            .finish()
    }
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
/// [`crate::session::PROBE_BYTES`]); on UDP, it is that direction's first datagram (cut to
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
    pub new_parser: fn(&crate::exchange::ConnInfo) -> Box<dyn Parser>,
    /// Zeek log this protocol writes with `--format zeek`, if any.
    pub zeek: Option<&'static crate::output::zeek::ZeekLog>,
    /// Summary used by reports: the exchange's "endpoint" (e.g. `GET /users/{id}`) and
    /// whether it failed.
    pub summarize: fn(&crate::exchange::Exchange) -> crate::exchange::Summary,
}

/// Every protocol, in detection order. Adding a protocol: one module, one line here.
pub static PROTOCOLS: &[&Protocol] = &[
    &redis::PROTOCOL,
    &http1::PROTOCOL,
    &dns::PROTOCOL,
    &postgresql::PROTOCOL,
    &http2::PROTOCOL,
    &mysql::PROTOCOL,
];

/// Finds a protocol by name.
pub fn by_name(name: &str) -> Option<&'static Protocol> {
    PROTOCOLS.iter().copied().find(|p| p.name == name)
}

/// A detection verdict: the protocol, and whether the roles must be swapped
/// ([`Probe::Reversed`]).
#[derive(Clone, Copy, Debug)]
pub struct Detected {
    /// The protocol.
    pub proto: &'static Protocol,
    /// The probe said the assumed client is the server.
    pub reversed: bool,
}

/// Detects the protocol of a connection from its first bytes.
///
/// Content decides; the port only breaks a tie when content cannot tell yet and the stream
/// has ended (so a protocol on its usual port still gets its parser for short streams).
pub fn detect(input: &ProbeInput<'_>, final_call: bool) -> Option<Result<Detected, ()>> {
    let mut undecided: Option<&'static Protocol> = None;
    let mut any_undecided = false;
    for p in PROTOCOLS
        .iter()
        .copied()
        .filter(|p| p.transports.contains(&input.transport))
    {
        match (p.probe)(input) {
            Probe::Yes => {
                return Some(Ok(Detected {
                    proto: p,
                    reversed: false,
                }));
            }
            Probe::Reversed => {
                return Some(Ok(Detected {
                    proto: p,
                    reversed: true,
                }));
            }
            Probe::NeedMore => {
                any_undecided = true;
                if undecided.is_none() && p.ports.contains(&input.server_port) {
                    undecided = Some(p);
                }
            }
            Probe::No => {}
        }
    }
    if !final_call && any_undecided {
        return None;
    }
    Some(
        undecided
            .map(|proto| Detected {
                proto,
                reversed: false,
            })
            .ok_or(()),
    )
}
