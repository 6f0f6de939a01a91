//! MySQL client/server protocol (MySQL and MariaDB), over TCP.
//!
//! One exchange per command: the login (the client's handshake response and the server's
//! final OK or ERR, auth switches and `caching_sha2_password` rounds in between), then every
//! command and its response, however many packets it takes (result sets with their rows,
//! several results of a multi-statement, a `LOCAL INFILE` transfer, a prepared statement's
//! definitions). Fields and `mysql.log` follow Zeek's MySQL analyzer and scripts
//! (`base/protocols/mysql`); `docs/mysql.md` has the semantics and limits, `docs/jsonl.md`
//! the keys.
//!
//! - Framing ([`framing::Framer`]): 4-byte headers, packets of 16 MiB - 1 joined with their
//!   continuations; only the first [`framing::MAX_KEEP`] bytes of a packet are kept, the rest
//!   is counted as it streams by, so memory is bounded whatever lengths a packet claims.
//! - The parser keys each command with its own id ([`MatchKey::Id`]): it knows which command a
//!   server packet answers (responses are in command order, and commands without a response —
//!   `quit`, `stmt_close`, `stmt_send_long_data` — are never waited for), so a command without
//!   a response does not shift later pairs.
//! - A gap inside a packet's payload keeps the framing; any other gap loses it for that
//!   direction, which resynchronises at the start of a later `data` call holding a plausible
//!   packet (a command for the client; for the server, a first response packet after a new
//!   command). After [`MAX_LOST_CALLS`] calls without resynchronising the parser gives up.
//! - An SSL request, negotiated compression, and replication streams end parsing
//!   ([`ParserState::Finished`]): what follows is not plain packets.
//!
//! The module's files: [`wire`] reads packets (no state), [`framing`] cuts a byte stream
//! into packets; this file holds the parser's state, framing and gap handling, and its
//! [`Parser`] impl; `client.rs` turns client packets (login, commands) into requests,
//! `server.rs` follows each command's response packet by packet; `probe.rs` detects the
//! protocol; `zeek.rs` writes `mysql.log` and the report summary.

pub mod framing;
pub mod wire;

mod client;
mod probe;
mod server;
mod zeek;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::l7::{Emitter, Event, MatchKey, Parser, ParserState, Protocol};
use crate::model::{ConnInfo, Dir, Fields, Transport, Ts};
use framing::{Framer, GapEffect, Meta};
use probe::{Look, look_command, look_greeting, look_response};
use wire::{Command, cap};

pub use zeek::{ZEEK_LOG, sql_verb};

/// Commands waiting for a response, at most (a client pipelining more has the oldest
/// forgotten: the matcher writes them without a response).
pub const MAX_PENDING: usize = 64;
/// Bytes of a command's argument (SQL text ...) reported.
pub const MAX_ARG: usize = 16 * 1024;
/// Prepared statements remembered per connection (id → SQL text), oldest forgotten first.
pub const MAX_STATEMENTS: usize = 128;
/// Bytes of a prepared statement's SQL text remembered.
pub const MAX_STATEMENT_SQL: usize = 2048;
/// Bytes of other texts reported (error messages, info, names).
pub const MAX_TEXT: usize = 1024;
/// `data` calls a direction may spend out of sync before the parser gives up.
pub const MAX_LOST_CALLS: u32 = 64;

/// The registration.
pub static PROTOCOL: Protocol = Protocol {
    name: "mysql",
    transports: &[Transport::Tcp],
    ports: &[3306],
    probe: probe::probe,
    new_parser: |c| Box::new(Mysql::new(c)),
    zeek: Some(&ZEEK_LOG),
    upgrade: None,
    summarize: zeek::summarize,
};

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server's greeting.
    Greeting,
    /// Greeting seen: the client's next packet is its handshake response.
    Login,
    /// Commands (the login's auth exchange included).
    Command,
}

/// What the next server packet of a pending command is expected to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Login or COM_CHANGE_USER: auth switch and more-data packets until an OK or ERR.
    Auth,
    /// One OK, ERR or EOF.
    Status,
    /// An unknown command: one packet, whatever it is.
    Single,
    /// COM_STATISTICS: one text packet.
    Statistics,
    /// A result's first packet: OK, ERR, LOCAL INFILE request, or a column count.
    Result,
    /// Column definitions still to come.
    Columns(u64),
    /// The EOF after column definitions (without `CLIENT_DEPRECATE_EOF`).
    ColumnsEof,
    /// The EOF after column definitions if the server sends one: capabilities unknown.
    ColumnsEofMaybe,
    /// Rows until an EOF (or OK) packet, or an ERR.
    Rows,
    /// The client is sending a file (LOCAL INFILE); the server answers after its empty packet.
    Infile,
    /// COM_FIELD_LIST: column definitions until an EOF.
    FieldList,
    /// COM_STMT_PREPARE's OK or ERR.
    Prepare,
    /// A prepared statement's definitions (parameters, then columns), and EOFs still due.
    PrepareDefs { left: u64, eofs: u8 },
    /// Definitions done; an EOF may follow (capabilities unknown).
    TrailingEofMaybe,
}

/// Response facts gathered while a response streams by.
#[derive(Debug, Default)]
struct Acc {
    success: Option<bool>,
    rows: Option<u64>,
    columns: Option<u64>,
    results: u64,
    affected: Option<u64>,
    last_insert_id: u64,
    warnings: u64,
    error: Option<(u16, Option<Vec<u8>>, Vec<u8>)>,
    info: Option<Vec<u8>>,
    statement_id: Option<u32>,
    params: Option<u16>,
    infile: Option<Vec<u8>>,
    infile_bytes: Option<u64>,
    auth_switch: Option<Vec<u8>>,
    progress_reports: u64,
}

/// A command waiting for (the rest of) its response.
#[derive(Debug)]
struct Pending {
    id: u64,
    /// The command; `None` for the login.
    command: Option<Command>,
    expect: Expect,
    /// Sequence id the next packet of the exchange should have.
    next_seq: u8,
    /// ResponseStart emitted.
    started: bool,
    /// Nothing of the response was lost.
    complete: bool,
    /// A sequence mismatch was counted (once per exchange).
    seq_noted: bool,
    /// Time of the response's last packet so far.
    last_end: Ts,
    /// COM_STMT_PREPARE: its SQL text, for the statement map.
    sql: Option<Vec<u8>>,
    acc: Acc,
}

/// Whether a direction's packet boundaries are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sync {
    InSync,
    /// Lost after a gap (or never found): waiting for a `data` call that starts with a packet.
    Lost,
}

/// The MySQL parser of one connection.
#[derive(Debug)]
pub struct Mysql {
    fr: [Framer; 2],
    sync: [Sync; 2],
    lost_calls: [u32; 2],
    /// The server direction may resynchronise: a command was sent since it was lost.
    server_armed: bool,
    phase: Phase,
    server_caps: Option<u64>,
    client_caps: Option<u64>,
    server_version: Option<Vec<u8>>,
    connection_id: Option<u32>,
    server_auth_plugin: Option<Vec<u8>>,
    next_id: u64,
    pending: VecDeque<Pending>,
    statements: VecDeque<(u32, Vec<u8>)>,
    /// SQL of the last COM_STMT_PREPARE sent (MariaDB's statement id -1 means it).
    last_prepare: Option<Vec<u8>>,
    /// Login seen with compression negotiated: stop after its OK.
    compressed: bool,
    state: ParserState,
}

/// `b` cut to `max` bytes (at a UTF-8 character boundary when the text is UTF-8), and
/// whether it was cut.
fn bounded(b: &[u8], max: usize) -> (Vec<u8>, bool) {
    if b.len() <= max {
        return (b.to_vec(), false);
    }
    let mut n = max;
    while n > 0 && max - n < 3 && b[n] & 0xc0 == 0x80 {
        n -= 1;
    }
    if b[n] & 0xc0 != 0x80 && n > 0 {
        (b[..n].to_vec(), true)
    } else {
        (b[..max].to_vec(), true)
    }
}

impl Mysql {
    /// A parser for a connection.
    pub fn new(_c: &ConnInfo) -> Self {
        Mysql {
            fr: [Framer::default(), Framer::default()],
            sync: [Sync::InSync; 2],
            lost_calls: [0; 2],
            server_armed: false,
            phase: Phase::Greeting,
            server_caps: None,
            client_caps: None,
            server_version: None,
            connection_id: None,
            server_auth_plugin: None,
            next_id: 0,
            pending: VecDeque::new(),
            statements: VecDeque::new(),
            last_prepare: None,
            compressed: false,
            state: ParserState::Active,
        }
    }

    /// Negotiated capabilities: the client's, within the server's when the greeting was seen.
    fn caps(&self) -> Option<u64> {
        match (self.server_caps, self.client_caps) {
            (Some(s), Some(c)) => Some(s & c),
            (None, Some(c)) => Some(c),
            _ => None,
        }
    }

    /// Whether rows end with an OK instead of an EOF; `None` when the capabilities are
    /// unknown (then both are accepted: an EOF is 5 bytes or less, such an OK 7 or more).
    fn deprecate_eof(&self) -> Option<bool> {
        self.caps().map(|c| c & cap::DEPRECATE_EOF != 0)
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn statement_sql(&self, id: u32) -> Option<&[u8]> {
        if id == u32::MAX {
            return self.last_prepare.as_deref();
        }
        self.statements
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, s)| &s[..])
    }

    // ---- framing, gaps and resynchronisation ----

    /// Direction `dir` lost its packet boundaries.
    fn lose(&mut self, dir: Dir, out: &mut Emitter) {
        let d = dir.idx();
        self.fr[d].reset();
        if self.sync[d] == Sync::Lost {
            return;
        }
        self.sync[d] = Sync::Lost;
        self.lost_calls[d] = 0;
        if dir == Dir::ToClient {
            self.server_armed = false;
            // The response in progress is cut short.
            if let Some(mut cur) = self.pending.pop_front() {
                if cur.started {
                    cur.complete = false;
                    self.finish(cur, out);
                } else {
                    self.pending.push_front(cur);
                }
            }
        }
    }

    /// Whether `data`, the start of a `data` call on a lost direction, starts with a packet.
    fn resyncs(&self, dir: Dir, data: &[u8]) -> bool {
        match dir {
            Dir::ToServer => look_command(data) == Look::Yes,
            Dir::ToClient => {
                self.server_armed
                    && self
                        .pending
                        .front()
                        .is_some_and(|p| !p.started && p.next_seq == 1)
                    && look_response(data) == Look::Yes
            }
        }
    }

    /// A packet the framer completed.
    fn packet(&mut self, dir: Dir, m: Meta, p: &[u8], out: &mut Emitter) {
        match dir {
            Dir::ToServer => self.client_packet(m, p, out),
            Dir::ToClient => self.server_packet(m, p, out),
        }
    }

    fn feed(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter) {
        let d = dir.idx();
        let mut rest = data;
        while !rest.is_empty() && self.state == ParserState::Active && self.sync[d] == Sync::InSync
        {
            let mut fr = std::mem::take(&mut self.fr[d]);
            let got = fr.next(ts, &mut rest);
            match got {
                Some((m, Some(body))) => {
                    self.fr[d] = fr;
                    self.packet(dir, m, body, out);
                }
                Some((m, None)) => {
                    let body = fr.take_head();
                    self.fr[d] = fr;
                    self.packet(dir, m, &body, out);
                    self.fr[d].give_back(body);
                }
                None => {
                    self.fr[d] = fr;
                    break;
                }
            }
        }
    }

    /// A packet cut by a gap or the end of its direction: a client command is still reported
    /// (truncated) when its first byte arrived.
    fn cut_command(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let d = dir.idx();
        let fr = &self.fr[d];
        if dir != Dir::ToServer || !fr.mid_packet() || fr.head().is_empty() {
            return;
        }
        if self.phase != Phase::Command {
            return;
        }
        let head = fr.head().to_vec();
        let m = Meta {
            seq: 0,
            last_seq: 0,
            len: head.len() as u64 + 1,
            start: ts,
            end: ts,
            lost: true,
            seq_error: false,
        };
        let m = fr.meta_so_far().map_or(m, |mut s| {
            s.lost = true;
            s.end = ts;
            s
        });
        if m.seq == 0 {
            self.command(m, &head, out);
        }
    }
}

impl Parser for Mysql {
    fn heap_bytes(&self) -> usize {
        // Pending commands (with their SQL, at most MAX_TEXT kept), prepared statements (at
        // most MAX_STATEMENT_SQL each, a quarter on average), the framers' kept heads.
        self.pending.capacity() * std::mem::size_of::<Pending>()
            + self.pending.len() * (MAX_TEXT / 2)
            + self.statements.len() * (16 + MAX_STATEMENT_SQL / 4)
            + self
                .fr
                .iter()
                .map(framing::Framer::heap_bytes)
                .sum::<usize>()
    }
    fn data(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter) {
        if self.state != ParserState::Active {
            return;
        }
        let d = dir.idx();
        if self.sync[d] == Sync::Lost {
            if !self.resyncs(dir, data) {
                self.lost_calls[d] += 1;
                if self.lost_calls[d] > MAX_LOST_CALLS {
                    out.weird("mysql_gave_up_after_gap");
                    self.state = ParserState::GaveUp;
                }
                return;
            }
            out.weird("mysql_resynchronized");
            self.sync[d] = Sync::InSync;
            self.fr[d].reset();
        } else if self.phase == Phase::Greeting && !self.fr[d].mid_packet() {
            // The first bytes of a side: a connection caught mid-stream may start inside a
            // packet, whose "header" would swallow what follows. Check before framing.
            let lost = match dir {
                Dir::ToClient => look_greeting(data) == Look::No,
                Dir::ToServer => {
                    !(data.len() >= wire::HEADER_LEN && data[3] == 1)
                        && look_command(data) == Look::No
                }
            };
            if lost {
                self.phase = Phase::Command;
                self.lose(dir, out);
                self.lost_calls[d] = 1;
                return;
            }
        }
        self.feed(dir, ts, data, out);
    }

    fn gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Emitter) {
        if self.state != ParserState::Active {
            return;
        }
        let d = dir.idx();
        if self.sync[d] == Sync::Lost {
            return;
        }
        out.weird("mysql_gap");
        // Keep what the cut packet showed, in case the framing is lost with it.
        let mid = self.fr[d].mid_packet();
        let saved = (dir == Dir::ToServer && mid)
            .then(|| (self.fr[d].head().to_vec(), self.fr[d].meta_so_far()));
        match self.fr[d].gap(ts, len) {
            GapEffect::Kept => {}
            GapEffect::Completed(m) => {
                let body = self.fr[d].head().to_vec();
                self.packet(dir, m, &body, out);
            }
            GapEffect::Lost => {
                if let Some((head, Some(mut m))) = saved
                    && !head.is_empty()
                    && m.seq == 0
                    && self.phase == Phase::Command
                {
                    m.lost = true;
                    m.end = ts;
                    self.command(m, &head, out);
                }
                if dir == Dir::ToClient && mid {
                    // The lost packet was part of the response in progress, or began it.
                    if let Some(cur) = self.pending.front_mut()
                        && !cur.started
                    {
                        cur.started = true;
                        // The response ends where it started: at the gap.
                        cur.last_end = ts;
                        out.emit(Event::ResponseStart {
                            ts,
                            key: MatchKey::Id(cur.id),
                            fields: Fields::default(),
                        });
                    }
                }
                self.lose(dir, out);
            }
        }
    }

    fn end(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        if self.state != ParserState::Active {
            return;
        }
        let d = dir.idx();
        if self.sync[d] == Sync::InSync && self.fr[d].mid_packet() {
            out.weird("mysql_packet_cut_short");
            self.cut_command(dir, ts, out);
            self.fr[d].reset();
        }
        if dir == Dir::ToClient {
            // Whatever response is in progress ends here.
            while let Some(mut cur) = self.pending.pop_front() {
                if cur.expect != Expect::TrailingEofMaybe {
                    cur.complete = false;
                }
                self.finish(cur, out);
            }
        }
    }

    fn state(&self) -> ParserState {
        self.state
    }
}
