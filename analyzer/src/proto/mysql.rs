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
//! - Framing ([`wire::Framer`]): 4-byte headers, packets of 16 MiB - 1 joined with their
//!   continuations; only the first [`wire::MAX_KEEP`] bytes of a packet are kept, the rest is
//!   counted as it streams by, so memory is bounded whatever lengths a packet claims.
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

pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::l7::{
    Emitter, Event, MatchKey, Parser, ParserState, Probe, ProbeInput, Protocol, ZVal, ZeekLog,
};
use crate::model::{ConnInfo, Dir, Exchange, Fields, Summary, Transport, Ts, Value};
use crate::read::{le_u16, le_u24, le_u32};
use wire::{Framer, GapEffect, MAX_PAYLOAD, Meta, cap, com, status};

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
    probe,
    new_parser: |c| Box::new(Mysql::new(c)),
    zeek: Some(&ZEEK_LOG),
    upgrade: None,
    summarize,
};

/// `mysql.log`, with Zeek's columns and conventions.
pub static ZEEK_LOG: ZeekLog = ZeekLog {
    path: "mysql",
    fields: &[
        ("cmd", "string"),
        ("arg", "string"),
        ("success", "bool"),
        ("rows", "count"),
        ("response", "string"),
    ],
    row: zeek_row,
};

fn zeek_row(ex: &Exchange, row: &mut Vec<ZVal>) -> bool {
    let f = &ex.fields;
    // Zeek logs commands and logins; a server packet answering nothing (an error instead of
    // a greeting) has no row.
    let Some(cmd) = f.text("command") else {
        return false;
    };
    row.push(ZVal::Text(cmd.to_vec()));
    // Zeek's arg is the command's payload without a trailing NUL: COM_FIELD_LIST's is the
    // table, a NUL and the wildcard.
    let mut arg = f.text("argument").unwrap_or_default().to_vec();
    if let Some(w) = f.text("field_wildcard") {
        arg.push(0);
        arg.extend_from_slice(w);
    }
    row.push(ZVal::Text(arg));
    let success = match f.get("success") {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    row.push(success.map_or(ZVal::Unset, ZVal::Bool));
    // Zeek's rows: an OK packet's affected rows, 0 when a result set ended with EOF.
    row.push(match success {
        Some(true) => ZVal::Count(f.u64("affected_rows").unwrap_or(0)),
        _ => ZVal::Unset,
    });
    row.push(ZVal::opt_text(f.text("response")));
    true
}

/// The statement's verb, upper-cased, with the object kind for DDL and `SHOW`
/// (`SELECT`, `CREATE TABLE`, `SHOW DATABASES`); `?` when the text does not start with a word.
/// Leading blanks, comments and parentheses are skipped; a `/*!NNNNN ... */` executable comment
/// is read as its content.
pub fn sql_verb(sql: &[u8]) -> String {
    let mut i = 0;
    let word_at = |i: usize| {
        let n = sql[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic() || **c == b'_')
            .count();
        &sql[i..i + n]
    };
    // Skips blanks, comments and parentheses from `i`.
    let skip = |mut i: usize| {
        loop {
            match sql.get(i..) {
                Some([c, ..]) if c.is_ascii_whitespace() || *c == b'(' => i += 1,
                Some([b'/', b'*', b'!', rest @ ..]) => {
                    i += 3 + rest.iter().take_while(|c| c.is_ascii_digit()).count();
                }
                Some([b'/', b'*', ..]) => match sql[i + 2..].windows(2).position(|w| w == b"*/") {
                    Some(p) => i += 2 + p + 2,
                    None => return sql.len(),
                },
                Some([b'-', b'-', c, ..]) if c.is_ascii_whitespace() => {
                    i += sql[i..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .unwrap_or(sql.len() - i);
                }
                Some([b'#', ..]) => {
                    i += sql[i..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .unwrap_or(sql.len() - i);
                }
                _ => return i,
            }
        }
    };
    i = skip(i);
    let verb = word_at(i).to_ascii_uppercase();
    if verb.is_empty() || verb.len() > 32 {
        return "?".into();
    }
    let mut out = String::from_utf8_lossy(&verb).into_owned();
    if matches!(&verb[..], b"CREATE" | b"DROP" | b"ALTER" | b"SHOW") {
        let mut j = skip(i + verb.len());
        for _ in 0..4 {
            let w = word_at(j).to_ascii_uppercase();
            if w.is_empty() || w.len() > 32 {
                break;
            }
            if matches!(
                &w[..],
                b"OR"
                    | b"REPLACE"
                    | b"TEMPORARY"
                    | b"UNIQUE"
                    | b"FULLTEXT"
                    | b"SPATIAL"
                    | b"FULL"
                    | b"GLOBAL"
                    | b"SESSION"
                    | b"ONLINE"
                    | b"IGNORE"
            ) {
                j = skip(j + w.len());
                continue;
            }
            out.push(' ');
            out.push_str(&String::from_utf8_lossy(&w));
            break;
        }
    }
    out
}

fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let endpoint = match f.text("command") {
        None => "(no command)".to_string(),
        Some(c) => {
            let cmd = String::from_utf8_lossy(c);
            match (c, f.text("argument")) {
                (b"query" | b"stmt_prepare" | b"stmt_execute", Some(sql)) => {
                    format!("{cmd} {}", sql_verb(sql))
                }
                _ => cmd.into_owned(),
            }
        }
    };
    let (status, failed) = match (f.u64("error_code"), f.get("success")) {
        (Some(code), _) => (Some(format!("ERR {code}")), true),
        (None, Some(Value::Bool(true))) => (Some("OK".into()), false),
        _ => (None, false),
    };
    Summary {
        endpoint,
        status,
        failed,
    }
}

/// What a probe makes of a direction's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    Yes,
    /// Consistent so far; more bytes needed.
    Short,
    No,
}

/// The payload length in a packet header (0 when the header is not all there).
fn u24(b: &[u8]) -> usize {
    le_u24(b, 0).map_or(0, |n| n as usize)
}

/// A server greeting (protocol 10) or the error a server sends instead of one.
fn look_greeting(b: &[u8]) -> Look {
    if b.len() < wire::HEADER_LEN + 1 {
        return if b.len() >= wire::HEADER_LEN && (b[3] != 0 || !(3..=1024).contains(&u24(b))) {
            Look::No
        } else {
            Look::Short
        };
    }
    let len = u24(b);
    if b[3] != 0 || !(3..=1024).contains(&len) {
        return Look::No;
    }
    let p = &b[wire::HEADER_LEN..b.len().min(wire::HEADER_LEN + len)];
    let whole = p.len() == len;
    match p[0] {
        10 => {
            let v = &p[1..];
            let Some(nul) = v.iter().position(|&c| c == 0) else {
                let ok = v.len() < 100 && v.iter().all(|c| (0x20..0x7f).contains(c));
                return if ok && !whole { Look::Short } else { Look::No };
            };
            let version = &v[..nul];
            if version.is_empty()
                || version.len() > 100
                || !version[0].is_ascii_digit()
                || !version.iter().all(|c| (0x20..0x7f).contains(c))
            {
                return Look::No;
            }
            // Connection id (4), scramble (8), a zero filler, capabilities (2).
            let after = 1 + nul + 1;
            if len < after + 15 {
                return Look::No;
            }
            match p.get(after + 12) {
                Some(0) => Look::Yes,
                Some(_) => Look::No,
                None => Look::Short,
            }
        }
        0xff => {
            if !whole {
                return Look::Short;
            }
            // The connection closes after it: nothing may follow.
            if b.len() != wire::HEADER_LEN + len {
                return Look::No;
            }
            let code = le_u16(p, 1).unwrap_or(0);
            let text = &p[3..];
            if (1000..5000).contains(&code)
                && !text.is_empty()
                && text.iter().all(|&c| c >= 0x20 && c != 0x7f)
            {
                Look::Yes
            } else {
                Look::No
            }
        }
        _ => Look::No,
    }
}

fn is_text(b: &[u8]) -> bool {
    b.iter()
        .all(|&c| c >= 0x20 && c != 0x7f || matches!(c, b'\t' | b'\n' | b'\r'))
}

/// A client command packet at the start of `b` (a connection caught mid-stream, or
/// resynchronising after a gap).
fn look_command(b: &[u8]) -> Look {
    if b.len() < wire::HEADER_LEN + 1 {
        return if b.len() >= wire::HEADER_LEN && (b[3] != 0 || u24(b) == 0) {
            Look::No
        } else {
            Look::Short
        };
    }
    let len = u24(b);
    if b[3] != 0 || len == 0 || len >= MAX_PAYLOAD {
        return Look::No;
    }
    let p = &b[wire::HEADER_LEN..b.len().min(wire::HEADER_LEN + len)];
    let whole = p.len() == len;
    let arg = &p[1..];
    let ok = match p[0] {
        com::QUIT | com::STATISTICS | com::PROCESS_INFO | 0x0d | 0x0e | com::RESET_CONNECTION => {
            len == 1
        }
        com::QUERY | com::STMT_PREPARE => {
            let text = match wire::split_query(arg, None) {
                Ok((_, t)) => t,
                Err(wire::Error::Truncated) if !whole => return Look::Short,
                Err(_) => return Look::No,
            };
            let lead = text.iter().find(|c| !c.is_ascii_whitespace());
            if !is_text(text) {
                return Look::No;
            }
            match lead {
                Some(c) if c.is_ascii_alphabetic() || matches!(c, b'(' | b'/' | b'-' | b'#') => {}
                Some(_) => return Look::No,
                None if whole => return Look::No,
                None => return Look::Short,
            }
            if !whole && text.len() < 8 {
                return Look::Short;
            }
            true
        }
        com::INIT_DB | com::CREATE_DB | com::DROP_DB | com::FIELD_LIST => {
            len <= 256 && arg.iter().all(|&c| c == 0 || c >= 0x20 && c != 0x7f) && len > 1
        }
        com::STMT_EXECUTE => {
            if len < 10 {
                return Look::No;
            }
            match p.get(5..10) {
                Some([flags, 1, 0, 0, 0]) if *flags <= 0x0f => true,
                Some(_) => false,
                None => return Look::Short,
            }
        }
        com::STMT_CLOSE | com::STMT_RESET => len == 5,
        com::STMT_FETCH => len == 9,
        _ => false,
    };
    if !ok {
        return Look::No;
    }
    if !whole {
        return Look::Short;
    }
    // Whatever follows must be another command (a pipelining client).
    match b.get(wire::HEADER_LEN + len + 3) {
        None | Some(0) => Look::Yes,
        Some(_) => Look::No,
    }
}

/// The first packet of a response at the start of `b` (sequence 1: the answer to a command).
fn look_response(b: &[u8]) -> Look {
    if b.len() < wire::HEADER_LEN + 1 {
        return Look::Short;
    }
    let len = u24(b);
    if b[3] != 1 || len == 0 || len >= MAX_PAYLOAD {
        return Look::No;
    }
    match b[4] {
        0x00 | 0xfe if len >= 5 => Look::Yes,
        0xff if len >= 3 => Look::Yes,
        0xfb => Look::Yes,
        // A column count; the optional metadata byte may follow it.
        1..=0xfa if len <= 2 => Look::Yes,
        0xfc if len <= 4 => Look::Yes,
        _ => Look::No,
    }
}

fn probe(p: &ProbeInput<'_>) -> Probe {
    let server = if p.to_client.is_empty() {
        Look::Short
    } else {
        look_greeting(p.to_client)
    };
    match server {
        Look::Yes => return Probe::Yes,
        Look::Short if p.to_server.is_empty() => return Probe::NeedMore,
        // Neither a greeting nor the start of an answer (SSH, SMTP banners): the client's
        // first bytes cannot make it MySQL.
        Look::No if look_response(p.to_client) == Look::No => return Probe::No,
        _ => {}
    }
    // No greeting: a connection caught mid-stream speaks commands. On the MySQL port a
    // plausible command is enough; elsewhere the server's first packet must answer it.
    match look_command(p.to_server) {
        // The server speaks first: a client that opens with anything but a command is not
        // talking MySQL.
        Look::No => Probe::No,
        Look::Short => Probe::NeedMore,
        Look::Yes if PROTOCOL.ports.contains(&p.server_port) => Probe::Yes,
        Look::Yes => match (p.to_client.is_empty(), look_response(p.to_client)) {
            (true, _) | (false, Look::Short) => Probe::NeedMore,
            (false, Look::Yes) => Probe::Yes,
            (false, Look::No) => Probe::No,
        },
    }
}

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
    /// The command's code; `None` for the login.
    code: Option<u8>,
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

/// What a server packet did to the pending command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// The response goes on.
    More,
    /// The response is complete.
    Done,
    /// The response was complete before this packet, which belongs to the next one.
    DoneBefore,
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

fn text(b: &[u8]) -> Value {
    Value::Text(bounded(b, MAX_TEXT).0)
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

    // ---- client side ----

    fn client_packet(&mut self, m: Meta, p: &[u8], out: &mut Emitter) {
        match self.phase {
            Phase::Login => self.login(m, p, out),
            Phase::Greeting if m.seq == 1 => {
                // The greeting was not seen (lost, or the capture started just after it).
                self.login(m, p, out)
            }
            Phase::Greeting | Phase::Command => {
                self.phase = Phase::Command;
                if m.seq != 0 {
                    self.client_continuation(m, out);
                } else {
                    self.command(m, p, out);
                }
            }
        }
    }

    /// A client packet inside an exchange: auth data, or a LOCAL INFILE file's contents.
    fn client_continuation(&mut self, m: Meta, out: &mut Emitter) {
        if let Some(cur) = self.pending.front_mut() {
            match cur.expect {
                Expect::Auth if cur.started => {
                    cur.next_seq = m.last_seq.wrapping_add(1);
                    return;
                }
                Expect::Infile => {
                    cur.next_seq = m.last_seq.wrapping_add(1);
                    if m.len == 0 {
                        cur.expect = Expect::Result;
                    } else {
                        *cur.acc.infile_bytes.get_or_insert(0) += m.len;
                    }
                    if m.lost {
                        cur.complete = false;
                    }
                    return;
                }
                _ => {}
            }
        }
        out.weird("mysql_unexpected_client_packet");
    }

    fn login(&mut self, m: Meta, p: &[u8], out: &mut Emitter) {
        self.phase = Phase::Command;
        if m.seq != 1 {
            out.weird("mysql_sequence_mismatch");
        }
        let h = match wire::parse_handshake_response(p, self.server_caps) {
            Ok(h) => h,
            Err(e) => {
                out.weird(e.weird());
                return;
            }
        };
        self.client_caps = Some(h.capabilities);
        if h.ssl_request {
            // TLS follows: nothing more is readable. Zeek logs no login for these either.
            self.state = ParserState::Finished;
            return;
        }
        let neg = self.caps().unwrap_or(0);
        self.compressed = neg & (cap::COMPRESS | cap::ZSTD) != 0;
        let mut f = Fields::default();
        f.set("command", Value::text("login"));
        f.set("argument", text(h.user));
        f.set("user", text(h.user));
        if let Some(db) = h.database.filter(|d| !d.is_empty()) {
            f.set("database", text(db));
        }
        if let Some(a) = h.auth_plugin.filter(|a| !a.is_empty()) {
            f.set("auth_plugin", text(a));
        }
        if let Some(v) = &self.server_version {
            f.set("server_version", Value::Text(v.clone()));
        }
        if let Some(id) = self.connection_id {
            f.set("connection_id", Value::U64(u64::from(id)));
        }
        if let Some(a) = &self.server_auth_plugin {
            f.set("server_auth_plugin", Value::Text(a.clone()));
        }
        if self.compressed {
            f.set("compressed", Value::Bool(true));
        }
        self.request(m, f, Some(Expect::Auth), None, None, out);
    }

    /// Emits a request (`code`: `None` for the login) and, when it has a response, queues it.
    fn request(
        &mut self,
        m: Meta,
        fields: Fields,
        expect: Option<Expect>,
        sql: Option<Vec<u8>>,
        code: Option<u8>,
        out: &mut Emitter,
    ) {
        let id = self.new_id();
        let key = MatchKey::Id(id);
        out.emit(Event::RequestStart {
            ts: m.start,
            key,
            fields,
        });
        out.emit(Event::RequestEnd {
            ts: m.end,
            key,
            fields: Fields::default(),
            complete: !m.lost,
        });
        let Some(expect) = expect else { return };
        if self.sync[Dir::ToClient.idx()] == Sync::Lost {
            // Responses to earlier commands went with the lost bytes; the next response the
            // server direction can find is this command's.
            self.pending.clear();
            self.server_armed = true;
        }
        if self.pending.len() >= MAX_PENDING {
            out.weird("mysql_too_many_pending_commands");
            self.pending.pop_front();
        }
        self.pending.push_back(Pending {
            id,
            code,
            expect,
            next_seq: m.last_seq.wrapping_add(1),
            started: false,
            complete: true,
            seq_noted: false,
            last_end: m.end,
            sql,
            acc: Acc::default(),
        });
    }

    fn command(&mut self, m: Meta, p: &[u8], out: &mut Emitter) {
        let Some((&code, arg)) = p.split_first() else {
            out.weird("mysql_empty_command");
            return;
        };
        let mut f = Fields::default();
        match wire::command_name(code) {
            Some(n) => f.set("command", Value::text(n)),
            None => f.set("command", Value::text(format!("unknown-{code}"))),
        }
        // The kept bytes end early: a gap, or a packet longer than what is kept.
        let cut = m.lost || (p.len() as u64) < m.len;
        let set_arg = |f: &mut Fields, a: &[u8]| {
            // Zeek drops one trailing NUL (some clients, mysqlslap among them, send one).
            let a = a.strip_suffix(&[0]).unwrap_or(a);
            let (v, c) = bounded(a, MAX_ARG);
            f.set("argument", Value::Text(v));
            if c || cut {
                f.set("argument_truncated", Value::Bool(true));
            }
        };
        let stmt_id = |a: &[u8]| le_u32(a, 0);
        let mut expect = Some(Expect::Status);
        let mut sql = None;
        match code {
            com::QUERY => {
                let attrs = self.caps().map(|c| c & cap::QUERY_ATTRIBUTES != 0);
                match wire::split_query(arg, attrs) {
                    Ok((n, text)) => {
                        set_arg(&mut f, text);
                        if n > 0 {
                            f.set("query_attributes", Value::U64(n));
                        }
                    }
                    Err(e) => {
                        if !cut {
                            out.weird(e.weird());
                        }
                        set_arg(&mut f, arg);
                    }
                }
                expect = Some(Expect::Result);
            }
            com::STMT_PREPARE => {
                set_arg(&mut f, arg);
                let s = bounded(arg, MAX_STATEMENT_SQL).0;
                self.last_prepare = Some(s.clone());
                sql = Some(s);
                expect = Some(Expect::Prepare);
            }
            com::STMT_EXECUTE
            | com::STMT_BULK_EXECUTE
            | com::STMT_FETCH
            | com::STMT_CLOSE
            | com::STMT_RESET
            | com::STMT_SEND_LONG_DATA => {
                match stmt_id(arg) {
                    Some(id) => {
                        f.set("statement_id", Value::U64(u64::from(id)));
                        if let Some(s) = self.statement_sql(id) {
                            let s = s.to_vec();
                            set_arg(&mut f, &s);
                        }
                    }
                    None => out.weird("mysql_truncated_packet"),
                }
                expect = match code {
                    com::STMT_EXECUTE | com::STMT_BULK_EXECUTE => Some(Expect::Result),
                    com::STMT_FETCH => Some(Expect::Rows),
                    com::STMT_RESET => Some(Expect::Status),
                    _ => None,
                };
                if code == com::STMT_CLOSE
                    && let Some(id) = stmt_id(arg)
                {
                    self.statements.retain(|(i, _)| *i != id);
                }
            }
            com::QUIT => expect = None,
            com::CHANGE_USER => {
                match wire::parse_change_user(arg, self.caps()) {
                    Ok(c) => {
                        f.set("argument", text(c.user));
                        f.set("user", text(c.user));
                        if let Some(db) = c.database.filter(|d| !d.is_empty()) {
                            f.set("database", text(db));
                        }
                        if let Some(a) = c.auth_plugin.filter(|a| !a.is_empty()) {
                            f.set("auth_plugin", text(a));
                        }
                    }
                    Err(e) => out.weird(e.weird()),
                }
                expect = Some(Expect::Auth);
            }
            com::FIELD_LIST => {
                let mut r = wire::Reader::new(arg);
                let table = r.nul_str();
                let wildcard = r.rest();
                set_arg(&mut f, table);
                if !wildcard.is_empty() {
                    f.set("field_wildcard", text(wildcard));
                }
                expect = Some(Expect::FieldList);
            }
            com::INIT_DB | com::CREATE_DB | com::DROP_DB => set_arg(&mut f, arg),
            com::STATISTICS => expect = Some(Expect::Statistics),
            com::PROCESS_INFO => expect = Some(Expect::Result),
            com::PROCESS_KILL => match stmt_id(arg) {
                Some(id) => set_arg(&mut f, id.to_string().as_bytes()),
                None => out.weird("mysql_truncated_packet"),
            },
            com::BINLOG_DUMP | com::BINLOG_DUMP_GTID | com::TABLE_DUMP => {
                // A replication stream follows, not responses: stop here.
                expect = None;
                self.state = ParserState::Finished;
            }
            com::MULTI => {
                // MariaDB's COM_MULTI bundles commands whose responses this parser does not
                // split: stop rather than mispair them.
                out.weird("mysql_com_multi_unsupported");
                expect = None;
                self.state = ParserState::Finished;
            }
            c if wire::command_name(c).is_some() => {
                if !arg.is_empty() {
                    set_arg(&mut f, arg);
                }
            }
            _ => {
                out.weird("mysql_unknown_command");
                if !arg.is_empty() {
                    set_arg(&mut f, arg);
                }
                expect = Some(Expect::Single);
            }
        }
        self.request(m, f, expect, sql, Some(code), out);
    }

    // ---- server side ----

    fn server_packet(&mut self, m: Meta, p: &[u8], out: &mut Emitter) {
        if self.phase == Phase::Greeting {
            self.greeting(m, p, out);
            return;
        }
        let Some(mut cur) = self.pending.pop_front() else {
            self.unsolicited(m, p, out);
            return;
        };
        let mut step = self.step(&mut cur, &m, p, out);
        if step == Step::DoneBefore {
            self.finish(cur, out);
            match self.pending.pop_front() {
                Some(next) => {
                    cur = next;
                    step = self.step(&mut cur, &m, p, out);
                }
                None => {
                    self.unsolicited(m, p, out);
                    return;
                }
            }
        }
        match step {
            Step::More => self.pending.push_front(cur),
            Step::Done | Step::DoneBefore => self.finish(cur, out),
        }
    }

    fn greeting(&mut self, m: Meta, p: &[u8], out: &mut Emitter) {
        match p.first() {
            Some(10) => match wire::parse_greeting(p) {
                Ok(g) => {
                    self.server_version = Some(bounded(g.server_version, MAX_TEXT).0);
                    self.connection_id = Some(g.connection_id);
                    self.server_caps = Some(g.capabilities);
                    self.server_auth_plugin = g
                        .auth_plugin
                        .filter(|a| !a.is_empty())
                        .map(|a| bounded(a, MAX_TEXT).0);
                    self.phase = Phase::Login;
                }
                Err(e) => {
                    out.weird(e.weird());
                    self.phase = Phase::Login;
                }
            },
            Some(0xff) => self.unsolicited(m, p, out),
            Some(_) => {
                // Not a greeting, so the capture began mid-stream: packet boundaries on this
                // side are a guess until a command is answered.
                self.phase = Phase::Command;
                self.lose(Dir::ToClient, out);
            }
            None => {
                out.weird("mysql_empty_packet");
            }
        }
    }

    /// A server packet when no command waits: an error (a timeout, a refused connection)
    /// becomes an exchange of its own; anything else means the parser lost track.
    fn unsolicited(&mut self, m: Meta, p: &[u8], out: &mut Emitter) {
        if p.first() == Some(&0xff)
            && let Ok(e) = wire::parse_err(p)
        {
            let mut acc = Acc::default();
            Self::error(&mut acc, &e);
            let key = MatchKey::Id(self.new_id());
            out.emit(Event::ResponseStart {
                ts: m.start,
                key,
                fields: Fields::default(),
            });
            out.emit(Event::ResponseEnd {
                ts: m.end,
                key,
                fields: Self::fields(&acc),
                complete: !m.lost,
            });
            return;
        }
        out.weird("mysql_unsolicited_response");
        self.lose(Dir::ToClient, out);
    }

    fn error(acc: &mut Acc, e: &wire::ErrPacket<'_>) {
        acc.success = Some(false);
        acc.error = Some((
            e.code,
            e.sql_state.map(<[u8]>::to_vec),
            bounded(e.message, MAX_TEXT).0,
        ));
    }

    fn ok(&mut self, acc: &mut Acc, p: &[u8], out: &mut Emitter) -> u16 {
        match wire::parse_ok(p, self.caps()) {
            Ok(o) => {
                if acc.success.is_none() {
                    acc.success = Some(true);
                }
                *acc.affected.get_or_insert(0) += o.affected_rows;
                if o.last_insert_id > 0 {
                    acc.last_insert_id = o.last_insert_id;
                }
                acc.warnings += u64::from(o.warnings);
                if !o.info.is_empty() && acc.info.is_none() {
                    acc.info = Some(bounded(o.info, MAX_TEXT).0);
                }
                o.status
            }
            Err(e) => {
                out.weird(e.weird());
                if acc.success.is_none() {
                    acc.success = Some(true);
                }
                0
            }
        }
    }

    /// The end of one result (an OK, or an EOF ending rows): another follows if the status
    /// says so.
    fn result_end(cur: &mut Pending, status: u16) -> Step {
        cur.acc.results += 1;
        if cur.acc.success.is_none() {
            cur.acc.success = Some(true);
        }
        if status & status::MORE_RESULTS != 0 {
            cur.expect = Expect::Result;
            Step::More
        } else {
            Step::Done
        }
    }

    /// A row-set terminator: an EOF packet, or (`CLIENT_DEPRECATE_EOF`) an OK with 0xfe.
    fn terminator(&mut self, cur: &mut Pending, m: &Meta, p: &[u8], out: &mut Emitter) -> Step {
        let st = if wire::is_eof(p, m.len) {
            cur.acc.warnings += u64::from(wire::eof_warnings(p));
            wire::eof_status(p)
        } else {
            // The terminator's affected rows are not the command's: keep only its status.
            let mut scratch = Acc::default();
            let st = self.ok(&mut scratch, p, out);
            cur.acc.warnings += scratch.warnings;
            st
        };
        Self::result_end(cur, st)
    }

    fn after_columns(&self) -> Expect {
        match self.deprecate_eof() {
            Some(true) => Expect::Rows,
            Some(false) => Expect::ColumnsEof,
            None => Expect::ColumnsEofMaybe,
        }
    }

    fn step(&mut self, cur: &mut Pending, m: &Meta, p: &[u8], out: &mut Emitter) -> Step {
        let first = p.first().copied();
        // Packets a "maybe" state did not expect belong to the next command's response:
        // nothing of this one is touched.
        if cur.expect == Expect::TrailingEofMaybe && !wire::is_eof(p, m.len) {
            return Step::DoneBefore;
        }
        if m.seq != cur.next_seq && !cur.seq_noted {
            out.weird("mysql_sequence_mismatch");
            cur.seq_noted = true;
        }
        cur.next_seq = m.last_seq.wrapping_add(1);
        if m.seq_error {
            out.weird("mysql_continuation_sequence_mismatch");
        }
        if !cur.started {
            cur.started = true;
            out.emit(Event::ResponseStart {
                ts: m.start,
                key: MatchKey::Id(cur.id),
                fields: Fields::default(),
            });
        }
        cur.last_end = m.end;
        if m.lost {
            cur.complete = false;
        }
        // MariaDB progress reports (an ERR with code 0xffff) may come inside any response.
        if let [0xff, 0xff, 0xff, ..] = p {
            cur.acc.progress_reports += 1;
            return Step::More;
        }
        if first == Some(0xff) {
            match wire::parse_err(p) {
                Ok(e) => Self::error(&mut cur.acc, &e),
                Err(e) => {
                    out.weird(e.weird());
                    cur.acc.success = Some(false);
                }
            }
            return Step::Done;
        }
        let is_eof = wire::is_eof(p, m.len);
        match cur.expect {
            Expect::Auth => match first {
                Some(0x00) => {
                    let mut acc = std::mem::take(&mut cur.acc);
                    self.ok(&mut acc, p, out);
                    cur.acc = acc;
                    if self.compressed && cur.code.is_none() {
                        // Compressed packets from here on.
                        self.state = ParserState::Finished;
                    }
                    Step::Done
                }
                Some(0xfe) => {
                    let mut r = wire::Reader::new(&p[1..]);
                    let plugin = r.nul_str();
                    cur.acc.auth_switch = Some(bounded(plugin, MAX_TEXT).0);
                    Step::More
                }
                Some(0x01) => Step::More,
                _ => {
                    out.weird("mysql_unexpected_auth_packet");
                    Step::More
                }
            },
            Expect::Status | Expect::Single => match first {
                Some(0x00) => {
                    let mut acc = std::mem::take(&mut cur.acc);
                    self.ok(&mut acc, p, out);
                    cur.acc = acc;
                    Step::Done
                }
                Some(0xfe) if is_eof => {
                    cur.acc.success = Some(true);
                    Step::Done
                }
                _ => {
                    if cur.expect == Expect::Status {
                        out.weird("mysql_unexpected_response");
                    }
                    Step::Done
                }
            },
            Expect::Statistics => {
                cur.acc.info = Some(bounded(p, MAX_TEXT).0);
                Step::Done
            }
            Expect::Result | Expect::Infile => match first {
                Some(0x00) => {
                    let mut acc = std::mem::take(&mut cur.acc);
                    let st = self.ok(&mut acc, p, out);
                    cur.acc = acc;
                    Self::result_end(cur, st)
                }
                Some(0xfe) if is_eof => {
                    let st = wire::eof_status(p);
                    Self::result_end(cur, st)
                }
                Some(0xfb) if cur.expect == Expect::Result => {
                    cur.acc.infile = Some(bounded(&p[1..], MAX_TEXT).0);
                    cur.expect = Expect::Infile;
                    Step::More
                }
                _ if cur.expect == Expect::Infile => {
                    out.weird("mysql_unexpected_response");
                    Step::More
                }
                _ => {
                    let mut r = wire::Reader::new(p);
                    let n = match r.lenenc() {
                        Ok(n) if n > 0 => n,
                        _ => {
                            out.weird("mysql_bad_column_count");
                            cur.complete = false;
                            return Step::Done;
                        }
                    };
                    if cur.acc.columns.is_none() {
                        cur.acc.columns = Some(n);
                    }
                    cur.acc.rows.get_or_insert(0);
                    // Optional metadata (MySQL) / cached metadata (MariaDB): a byte after the
                    // count says whether definitions follow.
                    let meta_flag = cap::OPTIONAL_RESULTSET_METADATA | cap::MARIADB_CACHE_METADATA;
                    let skip_defs = r.remaining() == 1
                        && self.caps().is_none_or(|c| c & meta_flag != 0)
                        && p[p.len() - 1] == 0;
                    cur.expect = if skip_defs {
                        self.after_columns()
                    } else {
                        Expect::Columns(n)
                    };
                    Step::More
                }
            },
            Expect::Columns(left) => {
                cur.expect = if left > 1 {
                    Expect::Columns(left - 1)
                } else {
                    self.after_columns()
                };
                Step::More
            }
            Expect::ColumnsEof | Expect::ColumnsEofMaybe if is_eof => {
                let st = wire::eof_status(p);
                if st & status::CURSOR_EXISTS != 0 {
                    // A cursor: the rows come with COM_STMT_FETCH.
                    return Self::result_end(cur, st);
                }
                cur.expect = Expect::Rows;
                Step::More
            }
            Expect::ColumnsEof | Expect::ColumnsEofMaybe | Expect::Rows => {
                if cur.expect == Expect::ColumnsEof {
                    out.weird("mysql_missing_eof");
                }
                cur.expect = Expect::Rows;
                if first == Some(0xfe) && m.len < MAX_PAYLOAD as u64 {
                    return self.terminator(cur, m, p, out);
                }
                *cur.acc.rows.get_or_insert(0) += 1;
                Step::More
            }
            Expect::FieldList => {
                if first == Some(0xfe) && m.len < MAX_PAYLOAD as u64 {
                    cur.acc.success = Some(true);
                    return Step::Done;
                }
                *cur.acc.columns.get_or_insert(0) += 1;
                Step::More
            }
            Expect::Prepare => match first.map(|_| wire::parse_prepare_ok(p)) {
                Some(Ok(o)) if first == Some(0x00) => {
                    cur.acc.success = Some(true);
                    cur.acc.statement_id = Some(o.statement_id);
                    cur.acc.params = Some(o.params);
                    cur.acc.columns = Some(u64::from(o.columns));
                    cur.acc.warnings += u64::from(o.warnings);
                    if let Some(sql) = cur.sql.take() {
                        self.statements.retain(|(i, _)| *i != o.statement_id);
                        if self.statements.len() >= MAX_STATEMENTS {
                            self.statements.pop_front();
                        }
                        self.statements.push_back((o.statement_id, sql));
                    }
                    let defs = if o.metadata {
                        u64::from(o.params) + u64::from(o.columns)
                    } else {
                        0
                    };
                    let eofs = match self.deprecate_eof() {
                        Some(false) if o.metadata => {
                            u8::from(o.params > 0) + u8::from(o.columns > 0)
                        }
                        _ => 0,
                    };
                    self.after_defs(cur, defs, eofs)
                }
                _ => {
                    out.weird("mysql_unexpected_response");
                    Step::Done
                }
            },
            Expect::PrepareDefs { left, eofs } => {
                if is_eof {
                    self.after_defs(cur, left, eofs.saturating_sub(1))
                } else if left > 0 {
                    self.after_defs(cur, left - 1, eofs)
                } else {
                    out.weird("mysql_unexpected_response");
                    Step::Done
                }
            }
            // Only EOFs get here (see the top of this function).
            Expect::TrailingEofMaybe => Step::Done,
        }
    }

    /// After a prepared statement's definitions: done, or more to come.
    fn after_defs(&self, cur: &mut Pending, left: u64, eofs: u8) -> Step {
        if left > 0 || eofs > 0 {
            cur.expect = Expect::PrepareDefs { left, eofs };
            return Step::More;
        }
        let defs = u64::from(cur.acc.params.unwrap_or(0)) + cur.acc.columns.unwrap_or(0);
        if self.deprecate_eof().is_none() && defs > 0 {
            cur.expect = Expect::TrailingEofMaybe;
            return Step::More;
        }
        Step::Done
    }

    fn fields(acc: &Acc) -> Fields {
        let mut f = Fields::default();
        if let Some(s) = acc.success {
            f.set("success", Value::Bool(s));
        }
        if let Some(n) = acc.rows {
            f.set("rows", Value::U64(n));
        }
        if let Some(n) = acc.columns {
            f.set("columns", Value::U64(n));
        }
        if acc.results > 1 {
            f.set("results", Value::U64(acc.results));
        }
        if let Some(n) = acc.affected {
            f.set("affected_rows", Value::U64(n));
        }
        if acc.last_insert_id > 0 {
            f.set("last_insert_id", Value::U64(acc.last_insert_id));
        }
        if acc.warnings > 0 {
            f.set("warnings", Value::U64(acc.warnings));
        }
        if let Some((code, state, msg)) = &acc.error {
            f.set("error_code", Value::U64(u64::from(*code)));
            if let Some(s) = state {
                f.set("sql_state", Value::Text(s.clone()));
            }
            f.set("error_message", Value::Text(msg.clone()));
            f.set("response", Value::Text(msg.clone()));
        }
        if let Some(i) = &acc.info {
            f.set("info", Value::Text(i.clone()));
        }
        if let Some(id) = acc.statement_id {
            f.set("statement_id", Value::U64(u64::from(id)));
        }
        if let Some(n) = acc.params {
            f.set("params", Value::U64(u64::from(n)));
        }
        if let Some(i) = &acc.infile {
            f.set("infile", Value::Text(i.clone()));
        }
        if let Some(n) = acc.infile_bytes {
            f.set("infile_bytes", Value::U64(n));
        }
        if let Some(a) = &acc.auth_switch {
            f.set("auth_switch", Value::Text(a.clone()));
        }
        if acc.progress_reports > 0 {
            f.set("progress_reports", Value::U64(acc.progress_reports));
        }
        f
    }

    /// Emits the end of a pending command's response.
    fn finish(&mut self, cur: Pending, out: &mut Emitter) {
        if !cur.started {
            return;
        }
        out.emit(Event::ResponseEnd {
            ts: cur.last_end,
            key: MatchKey::Id(cur.id),
            fields: Self::fields(&cur.acc),
            complete: cur.complete,
        });
    }

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
