//! Streaming, length-preserving redaction of secrets in captured payload.
//!
//! `juno-record` runs it on every byte of payload before the bytes are encoded and
//! compressed (socket payload and packet payload alike), and `juno-analyze --redact` runs the
//! same code over captures that were not made by juno-record. A secret value is overwritten in
//! place with [`FILL`] (`*`): lengths, framing and byte counts do not change, so the analyzer
//! still parses, pairs and counts everything.
//!
//! What is redacted ([`Rule`], each can be turned off; `docs/redaction.md`):
//! - HTTP/1 header values of `Authorization`, `Proxy-Authorization` ([`Rule::HttpAuth`]),
//!   `Cookie`, `Set-Cookie` ([`Rule::HttpCookie`]) and a configurable list
//!   ([`Rule::HttpHeaders`]: `X-Api-Key`, ...), also in chunked trailers and folded lines;
//! - the same header fields in HTTP/2 HPACK literals, raw or Huffman-coded;
//! - values of URL query (and fragment) parameters from a configurable list (`token`, `key`,
//!   `password`, ...) in request targets, HTTP/2 `:path`, `Referer`, `Location` and
//!   `Content-Location` ([`Rule::UrlQuery`]);
//! - PostgreSQL PasswordMessage, SASLInitialResponse and SASLResponse contents
//!   ([`Rule::Postgresql`]); MySQL authentication responses ([`Rule::Mysql`]); Redis
//!   `AUTH`, `HELLO ... AUTH`, `MIGRATE ... AUTH/AUTH2` and `CONFIG SET requirepass/masterauth`
//!   arguments ([`Rule::Redis`]).
//!
//! The protocol of each direction of each connection is recognised from its first bytes
//! ([`stream::Stream`]); anything that is not one of the binary protocols above is scanned as
//! text lines, so HTTP/1 is covered from any point of a connection. State is kept per
//! connection direction, so a header split across calls or packets is redacted, and is
//! bounded: a fixed set of small buffers per direction (HTTP/2: one small entry per dynamic
//! table entry, at most [`hpack::MAX_TABLE`] bytes of table), and at most a configured number
//! of directions ([`Redactor::new`]); what a bound or a gap cuts is counted in [`Counts`].
//!
//! Invariants (checked by the unit tests, the property tests and the fuzz target): no input
//! makes it panic; it never changes a length; it never leaves the value of a configured
//! header intact.

mod h2;
pub mod hpack;
mod huffman;
pub mod mark;
mod mysql;
mod packet;
mod policy;
mod postgres;
mod query;
mod resp;
pub mod stream;
mod table;
mod text;

pub use mark::{is_filled, mark_url};
pub use packet::linktype;
pub use policy::{DEFAULT_HEADERS, DEFAULT_PARAMS, Policy, PolicyError, Rule};
pub use table::{DIR_RECV, DIR_SEND, OFFSET_UNKNOWN, Redactor, tls_stream};

/// The byte secret values are overwritten with: a visible character that is valid in header
/// values, URLs and RESP inline commands, so every parser still reads the message.
pub const FILL: u8 = b'*';

/// What was redacted and what the bounds cut, since the redactor was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Values redacted, per rule (index: [`Rule::index`]).
    pub values: [u64; Rule::ALL.len()],
    /// Bytes overwritten.
    pub bytes: u64,
    /// Payload bytes looked at.
    pub input_bytes: u64,
    /// Connection directions whose state was dropped to stay within the bound (their next
    /// bytes are read as if the connection had just been found).
    pub streams_evicted: u64,
    /// Times a direction lost its place in a binary protocol (a gap it could not step over, a
    /// malformed length) and fell back to reading text lines or stopped.
    pub desync: u64,
    /// Packet bytes that arrived after a gap had already been declared over them (reordering)
    /// or that repeat bytes whose redaction is no longer remembered: overwritten whole.
    pub late_bytes_filled: u64,
    /// HTTP/2 directions whose HPACK dynamic table became unknown (started mid-connection, a
    /// gap in a header block): values of header fields whose name is unknown are redacted.
    pub hpack_context_lost: u64,
    /// HTTP/2 Huffman-coded URLs split across calls or packets: everything after the secret
    /// parameter's name was overwritten.
    pub hpack_tail_overwritten: u64,
}

impl Counts {
    pub(crate) fn hit(&mut self, r: Rule) {
        self.values[r.index()] += 1;
    }

    /// Values redacted under `r`.
    pub fn of(&self, r: Rule) -> u64 {
        self.values[r.index()]
    }

    /// Values redacted under every rule.
    pub fn total(&self) -> u64 {
        self.values.iter().sum()
    }

    /// Adds another set of counts.
    pub fn add(&mut self, o: &Counts) {
        for (a, b) in self.values.iter_mut().zip(o.values) {
            *a += b;
        }
        self.bytes += o.bytes;
        self.input_bytes += o.input_bytes;
        self.streams_evicted += o.streams_evicted;
        self.desync += o.desync;
        self.late_bytes_filled += o.late_bytes_filled;
        self.hpack_context_lost += o.hpack_context_lost;
        self.hpack_tail_overwritten += o.hpack_tail_overwritten;
    }

    /// The counts as named counters, as the recorder writes them into its statistics records
    /// (`redacted:<rule>` per rule, then the others).
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = Rule::ALL
            .iter()
            .map(|r| (format!("{}{}", COUNTER_PREFIX, r.name()), self.of(*r)))
            .collect();
        v.extend([
            ("redacted_bytes".to_string(), self.bytes),
            ("redaction_input_bytes".to_string(), self.input_bytes),
            (
                "redaction_streams_evicted".to_string(),
                self.streams_evicted,
            ),
            ("redaction_desync".to_string(), self.desync),
            (
                "redaction_late_bytes_filled".to_string(),
                self.late_bytes_filled,
            ),
            (
                "redaction_hpack_context_lost".to_string(),
                self.hpack_context_lost,
            ),
            (
                "redaction_hpack_tail_overwritten".to_string(),
                self.hpack_tail_overwritten,
            ),
        ]);
        v
    }
}

/// Prefix of the per-rule counters (`redacted:http-auth`, ...).
pub const COUNTER_PREFIX: &str = "redacted:";

/// What the protocol machines share while they run over one chunk.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) policy: &'a Policy,
    pub(crate) counts: &'a mut Counts,
    /// Set when any byte was changed.
    pub(crate) changed: bool,
}

impl Ctx<'_> {
    /// Overwrites `b` with [`FILL`].
    pub(crate) fn fill(&mut self, b: &mut [u8]) {
        if b.is_empty() {
            return;
        }
        b.fill(FILL);
        self.counts.bytes += b.len() as u64;
        self.changed = true;
    }

    /// Overwrites `b` except its NUL bytes (C strings keep their terminators).
    pub(crate) fn fill_non_nul(&mut self, b: &mut [u8]) {
        for x in b.iter_mut() {
            if *x != 0 {
                *x = FILL;
                self.counts.bytes += 1;
                self.changed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests;
