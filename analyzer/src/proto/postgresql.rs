//! PostgreSQL frontend/backend protocol, version 3.
//!
//! # Exchanges
//!
//! A request is one frontend *activity*, answered in order ([`MatchKey::Fifo`]); the kinds
//! follow the `frontend` column of Zeek's `postgresql.log`:
//!
//! - `ssl_request` / `gssenc_request`: answered by the server's one-byte reply. `S` (or `G`)
//!   means the rest of the connection is TLS (GSSAPI): the parser stops ([`ParserState::Finished`]).
//!   `N` means the client goes on in the clear with a StartupMessage.
//! - `startup`: the StartupMessage and the whole authentication exchange (PasswordMessage,
//!   SASL messages). The request ends with the client's last message before AuthenticationOk
//!   (or the error); the response runs from the server's first message to the first
//!   ReadyForQuery, or to the ErrorResponse that refused the login.
//! - `simple_query`: a Query message; its response ends with ReadyForQuery.
//! - `extended_query`: one extended-protocol cycle, from the first Parse/Bind/Describe/
//!   Execute/Close/Flush to Sync; the response ends with the ReadyForQuery that answers the
//!   Sync. The SQL text comes from the first Execute's portal (through the Bind that created
//!   it and the Parse that named its statement), else from the cycle's first Parse.
//! - `function_call`: a FunctionCall; response up to ReadyForQuery.
//! - `cancel_request`, `terminate`: no response is expected (exchanges without one).
//!
//! COPY data travels inside the exchange of the query that started the COPY: CopyData
//! messages are counted (messages and bytes, either way), never kept.
//!
//! # Framing, bounds, gaps
//!
//! Each direction is framed by the length fields, which are checked against the limits
//! PostgreSQL itself applies ([`wire::check_header`]). Only a bounded prefix of each message
//! body is kept ([`keep_limit`]: 2 bytes of a DataRow, [`MAX_SQL`] of SQL text, nothing of
//! CopyData); the rest is counted and skipped, so memory per connection is bounded whatever
//! the lengths claim. Prepared statements and portals are remembered up to
//! [`MAX_STATEMENTS`] / [`MAX_PORTALS`] (oldest forgotten first).
//!
//! A gap inside a message body keeps the framing (the length says where the next message
//! starts): the message is marked cut and its exchange incomplete. A gap across a message
//! boundary, or a header that fails its checks, loses the framing: the direction scans for a
//! message that resynchronises it (ReadyForQuery from the server; Query, Sync or Terminate
//! from the client) and gives up after [`MAX_RESYNC_SCAN`] bytes without one. Both
//! directions given up: [`ParserState::GaveUp`]. Every such event is a named weird.

pub mod wire;

#[cfg(test)]
mod tests;

use crate::read::be_u32;
use std::collections::VecDeque;
use std::sync::Arc;

use crate::l7::{
    Emitter, Event, MatchKey, Parser, ParserState, Probe, ProbeInput, Protocol, ZVal, ZeekLog,
};
use crate::model::{Dir, Exchange, Fields, Outcome, Summary, Transport, Ts, Value};
use wire::{Side, Untyped};

/// SQL text kept per query, statement or portal (bytes; longer texts are cut and flagged).
pub const MAX_SQL: usize = 4096;
/// Prepared statements remembered per connection (name → SQL).
pub const MAX_STATEMENTS: usize = 128;
/// Portals remembered per connection (name → SQL).
pub const MAX_PORTALS: usize = 32;
/// Entries kept in list fields (`messages`, `command_tags`, `parameters`).
pub const MAX_LIST: usize = 32;
/// Bytes kept of an ErrorResponse or NoticeResponse body.
pub const MAX_ERROR: usize = 8192;
/// Activities waiting for their response, per connection (beyond: the oldest is dropped,
/// as the matcher drops its record).
pub const MAX_WAITING: usize = crate::l7::MAX_OPEN;
/// Bytes scanned for a resynchronisation point before a direction is given up.
pub const MAX_RESYNC_SCAN: u64 = 1 << 20;

/// The registration.
pub static PROTOCOL: Protocol = Protocol {
    name: "postgresql",
    transports: &[Transport::Tcp],
    ports: &[5432],
    probe,
    new_parser: |_| Box::new(Postgres::new()),
    zeek: Some(&ZEEK_LOG),
    upgrade: None,
    summarize,
};

/// `postgresql.log`, with Zeek's columns.
pub static ZEEK_LOG: ZeekLog = ZeekLog {
    path: "postgresql",
    fields: &[
        ("user", "string"),
        ("database", "string"),
        ("application_name", "string"),
        ("frontend", "string"),
        ("frontend_arg", "string"),
        ("backend", "string"),
        ("backend_arg", "string"),
        ("success", "bool"),
        ("rows", "count"),
    ],
    row: zeek_row,
};

fn zeek_row(ex: &Exchange, row: &mut Vec<ZVal>) -> bool {
    if ex.outcome == Outcome::LateRequestEnd {
        return false;
    }
    let f = &ex.fields;
    for n in [
        "user",
        "database",
        "application_name",
        "frontend",
        "frontend_arg",
        "backend",
        "backend_arg",
    ] {
        row.push(ZVal::opt_text(f.text(n)));
    }
    row.push(match f.get("success") {
        Some(Value::Bool(b)) => ZVal::Bool(*b),
        _ => ZVal::Unset,
    });
    // Zeek counts DataRow messages and logs the count when ReadyForQuery closes a query that
    // did not fail (an ErrorResponse writes the row at once, without rows).
    let ready = f.text("transaction_status").is_some();
    let failed = f.text("error_code").is_some() || f.text("error_severity").is_some();
    let rows = match f.text("frontend") {
        Some(b"simple_query" | b"extended_query" | b"function_call") | None if ready && !failed => {
            f.u64("data_rows")
        }
        _ => None,
    };
    row.push(ZVal::opt_count(rows));
    true
}

fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let text = |n: &str| f.text(n).map(|t| String::from_utf8_lossy(t).into_owned());
    let verb =
        f.text("frontend_arg")
            .and_then(wire::sql_verb)
            .or_else(|| match f.get("command_tags") {
                Some(Value::List(t)) => t.first().and_then(|t| wire::sql_verb(t)),
                _ => None,
            });
    let endpoint = match (text("frontend"), verb) {
        (Some(fe), Some(v)) => format!("{fe} {v}"),
        (Some(fe), None) => fe,
        (None, _) => "(no request)".into(),
    };
    let code = text("error_code");
    let status = match (&code, text("error_severity")) {
        (Some(c), Some(s)) => Some(format!("{s} {c}")),
        (Some(c), None) => Some(c.clone()),
        (None, Some(s)) => Some(s),
        (None, None) => match f.get("success") {
            Some(Value::Bool(true)) => Some("ok".into()),
            Some(Value::Bool(false)) => Some("failed".into()),
            _ => None,
        },
    };
    Summary {
        endpoint,
        status,
        failed: code.is_some() || f.text("error_severity").is_some(),
    }
}

/// What a run of typed messages at the start of a probe buffer looks like.
fn typed_run(side: Side, b: &[u8], on_port: bool) -> Probe {
    let mut pos = 0;
    let mut whole = 0;
    while pos < b.len() {
        let Some(len) = be_u32(b, pos + 1) else {
            // A header still arriving: its type byte must already make sense.
            return if wire::known_type(side, b[pos]) {
                Probe::NeedMore
            } else {
                Probe::No
            };
        };
        let t = b[pos];
        if !wire::known_type(side, t) || wire::check_header(side, t, len).is_err() {
            return Probe::No;
        }
        let end = pos + 1 + len as usize;
        let Some(body) = b.get(pos + 5..end) else {
            break;
        };
        let ok = match (side, t) {
            (Side::Frontend, b'Q') | (Side::Backend, b'C') => {
                body.iter().position(|&c| c == 0) == Some(body.len().wrapping_sub(1))
            }
            (Side::Backend, b'Z') => matches!(body, [b'I' | b'T' | b'E']),
            (Side::Backend, b'E' | b'N') => wire::parse_fields(body).1,
            (Side::Backend, b'S') => wire::parse_parameter_status(body).is_some(),
            _ => true,
        };
        if !ok {
            return Probe::No;
        }
        whole += 1;
        pos = end;
    }
    match whole {
        0 => Probe::NeedMore,
        1 if pos == b.len() && on_port => Probe::Yes,
        1 => Probe::NeedMore,
        _ => Probe::Yes,
    }
}

fn probe(p: &ProbeInput<'_>) -> Probe {
    if p.transport != Transport::Tcp {
        return Probe::No;
    }
    let on_port = PROTOCOL.ports.contains(&p.server_port);
    let (c, s) = (p.to_server, p.to_client);
    if let Some(&first) = c.first() {
        // An untyped first message starts with the high byte of a small length; typed
        // messages start with an ASCII letter.
        if first == 0 {
            return match wire::looks_untyped(c) {
                None => Probe::NeedMore,
                Some(true) => Probe::Yes,
                Some(false) => Probe::No,
            };
        }
        // The capture began mid-connection: typed messages both ways.
        let server = if s.is_empty() {
            Probe::NeedMore
        } else {
            typed_run(Side::Backend, s, on_port)
        };
        return match (typed_run(Side::Frontend, c, on_port), server) {
            (Probe::No, _) | (_, Probe::No) => Probe::No,
            (Probe::Yes, _) | (_, Probe::Yes) => Probe::Yes,
            _ => Probe::NeedMore,
        };
    }
    if s.is_empty() {
        Probe::NeedMore
    } else {
        typed_run(Side::Backend, s, on_port)
    }
}

/// Bytes of a message body kept for decoding; the rest is skipped.
pub fn keep_limit(side: Side, t: u8) -> usize {
    match (side, t) {
        // Untyped: StartupMessage and friends, bounded by their own limit.
        (Side::Frontend, 0) => wire::MAX_STARTUP_LEN as usize,
        (Side::Frontend, b'Q') => MAX_SQL + 1,
        (Side::Frontend, b'P') => 1024 + MAX_SQL + 1,
        (Side::Frontend, b'd') | (Side::Backend, b'd') => 0,
        (Side::Frontend, b'F') => 4,
        (Side::Backend, b'D' | b'T' | b't') => 2,
        (Side::Backend, b'E' | b'N') => MAX_ERROR,
        _ => 1024,
    }
}

/// How a direction is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// At a point where the client may send an untyped message (connection start, after a
    /// refused SSL/GSS request); the first byte decides (0: untyped).
    Initial,
    /// Typed messages.
    Typed,
    /// Framing lost: scanning for a resynchronisation point.
    Lost,
    /// Nothing more is parsed (given up, or encrypted).
    Off,
}

/// The message being read.
#[derive(Debug)]
struct Cur {
    /// Type byte, 0 for an untyped message.
    typ: u8,
    /// The length field.
    len: u32,
    /// Body bytes not read yet.
    remaining: u64,
    /// The body prefix kept.
    keep: Vec<u8>,
    /// How much to keep.
    keep_max: usize,
    /// First byte's time.
    start: Ts,
    /// A gap took bytes of the body.
    cut: bool,
}

/// One direction's reader.
#[derive(Debug)]
struct Reader {
    mode: Mode,
    hdr: [u8; 5],
    hdr_len: usize,
    cur: Option<Cur>,
    /// Lost: the tail of what was scanned, for markers split across calls.
    carry: Vec<u8>,
    /// Lost: bytes scanned so far.
    scanned: u64,
    ended: bool,
}

impl Reader {
    fn new(mode: Mode) -> Self {
        Reader {
            mode,
            hdr: [0; 5],
            hdr_len: 0,
            cur: None,
            carry: Vec::new(),
            scanned: 0,
            ended: false,
        }
    }
    fn lose(&mut self) {
        self.mode = Mode::Lost;
        self.cur = None;
        self.hdr_len = 0;
        self.carry.clear();
        self.scanned = 0;
    }
}

/// What a client activity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    SslRequest,
    GssEncRequest,
    Startup,
    SimpleQuery,
    Extended,
    FunctionCall,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::SslRequest => "ssl_request",
            Kind::GssEncRequest => "gssenc_request",
            Kind::Startup => "startup",
            Kind::SimpleQuery => "simple_query",
            Kind::Extended => "extended_query",
            Kind::FunctionCall => "function_call",
        }
    }
}

/// A request whose end is not known yet (startup, extended cycle).
#[derive(Debug, Default)]
struct OpenReq {
    /// Last client message's end.
    last_ts: Ts,
    /// A gap or the end of the stream cut it.
    cut: bool,
    /// Extended: message kinds in order (bounded) and how many there were.
    messages: Vec<Vec<u8>>,
    n_messages: u64,
    /// Extended: SQL of the first Execute, else of the first Parse.
    sql: Sql,
    sql_from_execute: bool,
    statement: Option<Vec<u8>>,
    portal: Option<Vec<u8>>,
    executes: u64,
    /// Startup: the SASL mechanism the client chose.
    sasl_mechanism: Option<Vec<u8>>,
}

/// What the server said so far in answer to an activity.
#[derive(Debug, Default)]
struct Resp {
    /// Zeek's `backend` and `backend_arg`.
    backend: Option<String>,
    backend_arg: Option<Vec<u8>>,
    success: Option<bool>,
    data_rows: u64,
    rows: Option<u64>,
    tags: Vec<Vec<u8>>,
    error: Option<[Option<Vec<u8>>; 3]>,
    notices: u64,
    ready: Option<u8>,
    empty_query: bool,
    copy: [(u64, u64); 2],
    auth_method: Option<String>,
    sasl_offered: Vec<Vec<u8>>,
    server_version: Option<Vec<u8>>,
    backend_pid: Option<u32>,
    cut: bool,
}

impl Resp {
    fn append_backend(&mut self, kind: &str) {
        match &mut self.backend {
            Some(b) => {
                b.push(',');
                b.push_str(kind);
            }
            None => self.backend = Some(kind.to_string()),
        }
    }
    fn append_arg(&mut self, arg: &[u8]) {
        match &mut self.backend_arg {
            Some(a) => {
                a.push(b',');
                a.extend_from_slice(arg);
            }
            None => self.backend_arg = Some(arg.to_vec()),
        }
    }

    fn fields(self, kind: Option<Kind>) -> Fields {
        let mut f = Fields::default();
        if let Some(b) = self.backend {
            f.set("backend", Value::Text(b.into_bytes()));
        }
        if let Some(a) = self.backend_arg {
            f.set("backend_arg", Value::Text(a));
        }
        if let Some(s) = self.success {
            f.set("success", Value::Bool(s));
        }
        if matches!(
            kind,
            None | Some(Kind::SimpleQuery | Kind::Extended | Kind::FunctionCall)
        ) {
            f.set("data_rows", Value::U64(self.data_rows));
        }
        if let Some(r) = self.rows {
            f.set("rows", Value::U64(r));
        }
        if !self.tags.is_empty() {
            f.set("command_tags", Value::List(self.tags));
        }
        if self.empty_query {
            f.set("empty_query", Value::Bool(true));
        }
        if let Some([sev, code, msg]) = self.error {
            for (n, v) in [
                ("error_severity", sev),
                ("error_code", code),
                ("error_message", msg),
            ] {
                if let Some(v) = v {
                    f.set(n, Value::Text(v));
                }
            }
        }
        if self.notices > 0 {
            f.set("notices", Value::U64(self.notices));
        }
        if let Some(s) = self.ready {
            f.set("transaction_status", Value::Text(vec![s]));
        }
        let copy_names = [
            ("copy_in_messages", "copy_in_bytes"),
            ("copy_out_messages", "copy_out_bytes"),
        ];
        for ((m, b), (nm, nb)) in self.copy.into_iter().zip(copy_names) {
            if m > 0 {
                f.set(nm, Value::U64(m));
                f.set(nb, Value::U64(b));
            }
        }
        if let Some(m) = self.auth_method {
            f.set("auth_method", Value::Text(m.into_bytes()));
        }
        if !self.sasl_offered.is_empty() {
            f.set("sasl_mechanisms", Value::List(self.sasl_offered));
        }
        if let Some(v) = self.server_version {
            f.set("server_version", Value::Text(v));
        }
        if let Some(p) = self.backend_pid {
            f.set("backend_pid", Value::U64(u64::from(p)));
        }
        f
    }
}

/// A client activity waiting for (the end of) its response.
#[derive(Debug)]
struct Activity {
    kind: Kind,
    /// Some while the request is still open (only the newest activity's can be).
    req: Option<OpenReq>,
    resp: Resp,
    /// ResponseStart was emitted.
    started: bool,
    /// A COPY FROM STDIN is in progress.
    copy_in: bool,
}

/// Which one-byte reply the server owes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    Ssl,
    Gss,
}

/// SQL text (shared between statements, portals and requests) and whether it was cut.
type Sql = Option<(Arc<[u8]>, bool)>;

/// A remembered statement or portal: name and SQL.
type Named = (Vec<u8>, Sql);

/// The PostgreSQL parser of one connection.
#[derive(Debug)]
pub struct Postgres {
    rd: [Reader; 2],
    waiting: VecDeque<Activity>,
    /// A response to no known request (capture began mid-connection, or requests lost).
    orphan: Option<Resp>,
    reply: Option<Reply>,
    user: Option<Vec<u8>>,
    database: Option<Vec<u8>>,
    application_name: Option<Vec<u8>>,
    statements: VecDeque<Named>,
    portals: VecDeque<Named>,
    finished: bool,
    gave_up: bool,
}

impl Default for Postgres {
    fn default() -> Self {
        Self::new()
    }
}

fn bounded(b: &[u8], max: usize) -> Vec<u8> {
    b[..b.len().min(max)].to_vec()
}

fn remember(list: &mut VecDeque<Named>, max: usize, name: &[u8], sql: Sql) {
    if let Some(i) = list.iter().position(|(n, _)| n == name) {
        list.remove(i);
    }
    if list.len() >= max {
        list.pop_front();
    }
    list.push_back((bounded(name, 1024), sql));
}

fn lookup(list: &VecDeque<Named>, name: &[u8]) -> Sql {
    list.iter()
        .rev()
        .find(|(n, _)| n == name)
        .and_then(|(_, s)| s.clone())
}

impl Postgres {
    /// A parser for a new connection.
    pub fn new() -> Self {
        Postgres {
            rd: [Reader::new(Mode::Initial), Reader::new(Mode::Typed)],
            waiting: VecDeque::new(),
            orphan: None,
            reply: None,
            user: None,
            database: None,
            application_name: None,
            statements: VecDeque::new(),
            portals: VecDeque::new(),
            finished: false,
            gave_up: false,
        }
    }

    fn conn_fields(&self, kind: &str) -> Fields {
        let mut f = Fields::default();
        for (n, v) in [
            ("user", &self.user),
            ("database", &self.database),
            ("application_name", &self.application_name),
        ] {
            if let Some(v) = v {
                f.set(n, Value::Text(v.clone()));
            }
        }
        f.set("frontend", Value::text(kind));
        f
    }

    /// Ends the open request, if any.
    fn close_request(&mut self, out: &mut Emitter) {
        let Some(a) = self.waiting.back_mut() else {
            return;
        };
        let Some(r) = a.req.take() else { return };
        let mut f = Fields::default();
        if a.kind == Kind::Extended {
            if let Some((sql, cut)) = r.sql {
                f.set("frontend_arg", Value::Text(sql.to_vec()));
                if cut {
                    f.set("query_truncated", Value::Bool(true));
                }
            }
            if let Some(s) = r.statement {
                f.set("statement", Value::Text(s));
            }
            if let Some(p) = r.portal {
                f.set("portal", Value::Text(p));
            }
            f.set("messages", Value::List(r.messages));
            f.set("message_count", Value::U64(r.n_messages));
            f.set("executes", Value::U64(r.executes));
        }
        if let Some(m) = r.sasl_mechanism {
            f.set("sasl_mechanism", Value::Text(m));
        }
        out.emit(Event::RequestEnd {
            ts: r.last_ts,
            key: MatchKey::Fifo,
            fields: f,
            complete: !r.cut,
        });
    }

    /// Starts an activity: ends the open request, emits the new request's start, and (when
    /// a response is expected) queues it.
    fn begin(&mut self, kind: Kind, ts: Ts, fields: Fields, open: bool, out: &mut Emitter) {
        self.close_request(out);
        out.emit(Event::RequestStart {
            ts,
            key: MatchKey::Fifo,
            fields,
        });
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.pop_front();
            out.weird("postgresql_too_many_waiting");
        }
        self.waiting.push_back(Activity {
            kind,
            req: Some(OpenReq {
                last_ts: ts,
                ..OpenReq::default()
            }),
            resp: Resp::default(),
            started: false,
            copy_in: false,
        });
        if !open {
            self.close_request(out);
        }
    }

    /// A request without a response (Terminate, CancelRequest): start and end at once.
    fn lone_request(&mut self, start: Ts, end: Ts, fields: Fields, cut: bool, out: &mut Emitter) {
        self.close_request(out);
        out.emit(Event::RequestStart {
            ts: start,
            key: MatchKey::Fifo,
            fields,
        });
        out.emit(Event::RequestEnd {
            ts: end,
            key: MatchKey::Fifo,
            fields: Fields::default(),
            complete: !cut,
        });
    }

    /// The response the next server message belongs to, started if need be. `None` only
    /// for asynchronous messages with nothing to attach to.
    fn resp(&mut self, ts: Ts, asynchronous: bool, out: &mut Emitter) -> Option<&mut Resp> {
        if let Some(a) = self.waiting.front_mut() {
            if !a.started {
                a.started = true;
                out.emit(Event::ResponseStart {
                    ts,
                    key: MatchKey::Fifo,
                    fields: Fields::default(),
                });
            }
            return Some(&mut a.resp);
        }
        if self.orphan.is_none() {
            if asynchronous {
                return None;
            }
            out.weird("postgresql_response_without_request");
            out.emit(Event::ResponseStart {
                ts,
                key: MatchKey::Fifo,
                fields: Fields::default(),
            });
            self.orphan = Some(Resp::default());
        }
        self.orphan.as_mut()
    }

    /// Ends the response in progress (the oldest waiting activity's, or the orphan).
    fn end_response(&mut self, ts: Ts, complete: bool, out: &mut Emitter) {
        if let Some(a) = self.waiting.front() {
            if !a.started {
                return;
            }
            if a.req.is_some() {
                // Only the newest activity's request can be open: this is it.
                self.close_request(out);
            }
            let Some(a) = self.waiting.pop_front() else {
                return;
            };
            let complete = complete && !a.resp.cut;
            out.emit(Event::ResponseEnd {
                ts,
                key: MatchKey::Fifo,
                fields: a.resp.fields(Some(a.kind)),
                complete,
            });
        } else if let Some(r) = self.orphan.take() {
            let complete = complete && !r.cut;
            out.emit(Event::ResponseEnd {
                ts,
                key: MatchKey::Fifo,
                fields: r.fields(None),
                complete,
            });
        }
    }

    /// The open extended-protocol cycle, started if need be.
    fn extended(&mut self, ts: Ts, out: &mut Emitter) -> Option<&mut OpenReq> {
        let open = matches!(
            self.waiting.back(),
            Some(Activity {
                kind: Kind::Extended,
                req: Some(_),
                ..
            })
        );
        if !open {
            let f = self.conn_fields(Kind::Extended.name());
            self.begin(Kind::Extended, ts, f, true, out);
        }
        match self.waiting.back_mut() {
            Some(Activity { req: Some(r), .. }) => Some(r),
            _ => None,
        }
    }

    fn frontend_untyped(&mut self, m: &Cur, end: Ts, out: &mut Emitter) {
        let msg = match wire::parse_untyped(m.len, &m.keep) {
            Ok(u) => u,
            Err(e) => {
                // Not protocol 3 (or not PostgreSQL): nothing after it can be framed.
                out.weird(e.weird());
                self.give_up(out);
                return;
            }
        };
        match msg {
            Untyped::SslRequest | Untyped::GssEncRequest => {
                let (kind, reply) = if msg == Untyped::SslRequest {
                    (Kind::SslRequest, Reply::Ssl)
                } else {
                    (Kind::GssEncRequest, Reply::Gss)
                };
                let f = self.conn_fields(kind.name());
                self.begin(kind, m.start, f, false, out);
                self.reply = Some(reply);
                // The next client message is untyped again (after a refusal).
                self.rd[0].mode = Mode::Initial;
            }
            Untyped::Cancel { pid } => {
                let mut f = self.conn_fields("cancel_request");
                f.set("process_id", Value::U64(u64::from(pid)));
                self.lone_request(m.start, end, f, m.cut, out);
                self.rd[0].mode = Mode::Typed;
            }
            Untyped::Startup {
                major,
                minor,
                params,
                malformed,
            } => {
                if malformed {
                    out.weird("postgresql_bad_startup_parameters");
                }
                let mut others = Vec::new();
                for (n, v) in params {
                    match &n[..] {
                        b"user" => self.user = Some(bounded(&v, 1024)),
                        b"database" => self.database = Some(bounded(&v, 1024)),
                        b"application_name" => self.application_name = Some(bounded(&v, 1024)),
                        _ if others.len() < MAX_LIST => {
                            let mut p = bounded(&n, 256);
                            p.push(b'=');
                            p.extend_from_slice(&v[..v.len().min(256)]);
                            others.push(p);
                        }
                        _ => {}
                    }
                }
                let mut f = self.conn_fields(Kind::Startup.name());
                f.set("protocol_version", Value::text(format!("{major}.{minor}")));
                if !others.is_empty() {
                    f.set("parameters", Value::List(others));
                }
                self.begin(Kind::Startup, m.start, f, true, out);
                if let Some(Activity { req: Some(r), .. }) = self.waiting.back_mut() {
                    r.last_ts = end;
                    r.cut = m.cut || malformed;
                }
                self.rd[0].mode = Mode::Typed;
            }
        }
    }

    fn frontend(&mut self, m: Cur, end: Ts, out: &mut Emitter) {
        if m.typ == 0 {
            self.frontend_untyped(&m, end, out);
            return;
        }
        let body = &m.keep[..];
        let whole = !m.cut && body.len() as u64 + 4 == u64::from(m.len);
        match m.typ {
            b'Q' => {
                let mut pos = 0;
                let (sql, sql_cut) = wire::cstr_or_rest(body, &mut pos);
                let mut f = self.conn_fields(Kind::SimpleQuery.name());
                f.set("frontend_arg", Value::Text(bounded(sql, MAX_SQL)));
                if sql_cut || sql.len() > MAX_SQL {
                    f.set("query_truncated", Value::Bool(true));
                }
                if whole && pos != body.len() {
                    out.weird("postgresql_malformed_query");
                }
                self.begin(Kind::SimpleQuery, m.start, f, true, out);
                if let Some(Activity { req: Some(r), .. }) = self.waiting.back_mut() {
                    r.last_ts = end;
                    r.cut = m.cut;
                }
                self.close_request(out);
            }
            b'P' | b'B' | b'D' | b'E' | b'C' | b'H' | b'S' => self.extended_message(m, end, out),
            b'F' => {
                let mut f = self.conn_fields(Kind::FunctionCall.name());
                if let Some(oid) = be_u32(body, 0) {
                    f.set("function_oid", Value::U64(u64::from(oid)));
                }
                self.begin(Kind::FunctionCall, m.start, f, true, out);
                if let Some(Activity { req: Some(r), .. }) = self.waiting.back_mut() {
                    r.last_ts = end;
                    r.cut = m.cut;
                }
                self.close_request(out);
            }
            b'p' => {
                // Password, SASL and GSSAPI messages: part of the startup exchange. Their
                // contents are credentials and never kept; only the SASL mechanism name is.
                match self.waiting.back_mut() {
                    Some(Activity {
                        kind: Kind::Startup,
                        req: Some(r),
                        resp,
                        ..
                    }) => {
                        r.last_ts = end;
                        r.cut |= m.cut;
                        if r.sasl_mechanism.is_none() && !resp.sasl_offered.is_empty() {
                            let mut pos = 0;
                            if let Some(mech) = wire::cstr(body, &mut pos)
                                && resp.sasl_offered.iter().any(|o| o == mech)
                            {
                                r.sasl_mechanism = Some(mech.to_vec());
                            }
                        }
                    }
                    _ => out.weird("postgresql_auth_response_outside_startup"),
                }
            }
            b'd' | b'c' | b'f' => {
                // COPY FROM STDIN data: counted on the query that started the COPY.
                match self.waiting.front_mut() {
                    Some(a) if a.copy_in => {
                        if m.typ == b'd' {
                            a.resp.copy[0].0 += 1;
                            a.resp.copy[0].1 += u64::from(m.len) - 4;
                        } else {
                            a.copy_in = false;
                        }
                        if m.cut {
                            a.resp.cut = true;
                        }
                    }
                    _ => out.weird("postgresql_copy_data_outside_copy"),
                }
            }
            b'X' => {
                let f = self.conn_fields("terminate");
                self.lone_request(m.start, end, f, m.cut, out);
            }
            _ => out.weird("postgresql_unknown_frontend_message"),
        }
    }

    fn extended_message(&mut self, m: Cur, end: Ts, out: &mut Emitter) {
        let body = &m.keep[..];
        // Decode first: the statement and portal tables are read and written here.
        let mut parsed: Sql = None;
        // Parse: the statement named; Execute: the portal run and its SQL.
        let mut parsed_name: Option<Vec<u8>> = None;
        let mut executed: Option<(Vec<u8>, Sql)> = None;
        let mut bad = false;
        match m.typ {
            b'P' => match wire::parse_parse(body) {
                Some(p) => {
                    let cut = p.sql_cut || p.sql.len() > MAX_SQL;
                    let sql: Arc<[u8]> = Arc::from(&p.sql[..p.sql.len().min(MAX_SQL)]);
                    remember(
                        &mut self.statements,
                        MAX_STATEMENTS,
                        p.statement,
                        Some((sql.clone(), cut)),
                    );
                    parsed = Some((sql, cut));
                    parsed_name = Some(p.statement.to_vec());
                }
                None => bad = true,
            },
            b'B' => match wire::parse_bind(body) {
                Some((portal, statement)) => {
                    let sql = lookup(&self.statements, statement);
                    remember(&mut self.portals, MAX_PORTALS, portal, sql);
                }
                None => bad = true,
            },
            b'E' => match wire::parse_execute(body) {
                Some((portal, _)) => {
                    executed = Some((portal.to_vec(), lookup(&self.portals, portal)));
                }
                None => bad = true,
            },
            b'C' => match wire::parse_target(body) {
                Some((b'S', name)) => {
                    if let Some(i) = self.statements.iter().position(|(n, _)| n == name) {
                        self.statements.remove(i);
                    }
                }
                Some((_, name)) => {
                    if let Some(i) = self.portals.iter().position(|(n, _)| n == name) {
                        self.portals.remove(i);
                    }
                }
                None => bad = true,
            },
            b'D' => bad = wire::parse_target(body).is_none(),
            _ => {}
        }
        if bad && !m.cut {
            out.weird("postgresql_malformed_extended_message");
        }
        // The statement named in Bind: remember for the Execute that follows.
        let bind_statement = if m.typ == b'B' {
            wire::parse_bind(body).map(|(_, s)| s.to_vec())
        } else {
            None
        };
        let Some(r) = self.extended(m.start, out) else {
            return;
        };
        r.last_ts = end;
        r.cut |= m.cut;
        r.n_messages += 1;
        if r.messages.len() < MAX_LIST {
            r.messages
                .push(wire::frontend_name(m.typ).as_bytes().to_vec());
        }
        if let Some(s) = bind_statement
            && !r.sql_from_execute
        {
            r.statement = Some(bounded(&s, 1024));
        }
        if let Some(s) = parsed_name
            && r.statement.is_none()
        {
            r.statement = Some(bounded(&s, 1024));
        }
        if let Some((portal, sql)) = executed {
            r.executes += 1;
            if !r.sql_from_execute {
                r.sql_from_execute = true;
                r.portal = Some(bounded(&portal, 1024));
                if sql.is_some() {
                    r.sql = sql;
                }
            }
        }
        if r.sql.is_none() {
            r.sql = parsed;
        }
        if m.typ == b'S' {
            self.close_request(out);
        }
    }

    fn backend(&mut self, m: Cur, end: Ts, out: &mut Emitter) {
        let body = &m.keep[..];
        let whole = !m.cut && body.len() as u64 + 4 == u64::from(m.len);
        let asynchronous = matches!(m.typ, b'S' | b'N' | b'A');
        let cut = m.cut;
        // A message of the server's that ends the startup exchange ends its request.
        if matches!(m.typ, b'R' | b'E')
            && matches!(self.waiting.back(), Some(a) if a.kind == Kind::Startup && a.req.is_some())
            && (m.typ == b'E' || be_u32(body, 0) == Some(0))
        {
            self.close_request(out);
        }
        let front_kind = self.waiting.front().map(|a| a.kind);
        let mut copy_in = false;
        let Some(resp) = self.resp(m.start, asynchronous, out) else {
            return;
        };
        if cut {
            resp.cut = true;
        }
        let mut end_now = false;
        let mut weird = None;
        match m.typ {
            b'R' => match be_u32(body, 0) {
                Some(0) => {
                    resp.backend = Some("auth_ok".into());
                    resp.success = Some(true);
                }
                Some(id) => {
                    // Zeek's rule: requests after anything but another request append.
                    if resp
                        .backend
                        .as_deref()
                        .is_some_and(|b| !b.ends_with("auth"))
                    {
                        resp.append_backend("auth_request");
                    } else {
                        resp.backend = Some("auth_request".into());
                    }
                    let name = wire::auth_name(id);
                    resp.append_arg(name.as_bytes());
                    if resp.auth_method.is_none() {
                        resp.auth_method = Some(name.into_owned());
                    }
                    if id == 10 {
                        resp.sasl_offered = wire::sasl_mechanisms(&body[4..])
                            .into_iter()
                            .take(MAX_LIST)
                            .collect();
                    }
                }
                None => weird = Some("postgresql_malformed_authentication"),
            },
            b'K' => resp.backend_pid = be_u32(body, 0),
            b'S' => match wire::parse_parameter_status(body) {
                Some((b"server_version", v)) => resp.server_version = Some(bounded(v, 256)),
                Some(_) => {}
                None => weird = Some("postgresql_malformed_parameter_status"),
            },
            b'Z' => {
                match body.first() {
                    Some(&s @ (b'I' | b'T' | b'E')) => {
                        resp.ready = Some(s);
                        if resp.success.is_none() {
                            resp.success = Some(s != b'E');
                        }
                    }
                    _ => weird = Some("postgresql_bad_transaction_status"),
                }
                end_now = true;
            }
            b'E' | b'N' => {
                let (fields, ok) = wire::parse_fields(body);
                if !ok && whole {
                    weird = Some("postgresql_malformed_error_fields");
                }
                let mut arg = Vec::new();
                for (i, (code, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        arg.push(b',');
                    }
                    arg.extend_from_slice(wire::field_name(*code).as_bytes());
                    arg.push(b'=');
                    arg.extend_from_slice(v);
                }
                if m.typ == b'N' {
                    resp.notices += 1;
                    if !arg.is_empty() {
                        resp.append_arg(&arg);
                    }
                } else {
                    resp.append_backend("error");
                    resp.append_arg(&arg);
                    resp.success = Some(false);
                    let get = |c: u8| {
                        fields
                            .iter()
                            .find(|(k, _)| *k == c)
                            .map(|(_, v)| bounded(v, 1024))
                    };
                    let severity = get(b'V').or_else(|| get(b'S'));
                    // The first error of an exchange is the one reported.
                    if resp.error.is_none() {
                        resp.error = Some([severity.clone(), get(b'C'), get(b'M')]);
                    }
                    // A fatal error ends the session (the server closes); so does any error
                    // during startup and authentication.
                    let fatal = matches!(severity.as_deref(), Some(b"FATAL" | b"PANIC"));
                    end_now = fatal
                        || matches!(
                            front_kind,
                            Some(Kind::Startup | Kind::SslRequest | Kind::GssEncRequest)
                        );
                }
            }
            b'T' => {}
            b'D' => resp.data_rows += 1,
            b'C' => {
                let mut pos = 0;
                let (tag, _) = wire::cstr_or_rest(body, &mut pos);
                if let Some(n) = wire::tag_rows(tag) {
                    resp.rows = Some(resp.rows.unwrap_or(0).saturating_add(n));
                }
                if resp.tags.len() < MAX_LIST {
                    resp.tags.push(bounded(tag, 256));
                }
            }
            b'I' => resp.empty_query = true,
            b'd' => {
                resp.copy[1].0 += 1;
                resp.copy[1].1 += u64::from(m.len) - 4;
            }
            b'G' | b'W' => copy_in = true,
            b'1' | b'2' | b'3' | b'n' | b's' | b't' | b'H' | b'c' | b'V' | b'v' | b'A' => {}
            _ => weird = Some("postgresql_unknown_backend_message"),
        }
        if let Some(w) = weird {
            out.weird(w);
        }
        if copy_in && let Some(a) = self.waiting.front_mut() {
            a.copy_in = true;
        }
        if end_now {
            self.end_response(end, true, out);
        }
    }

    fn dispatch(&mut self, d: usize, m: Cur, end: Ts, out: &mut Emitter) {
        if d == 0 {
            self.frontend(m, end, out);
        } else {
            self.backend(m, end, out);
        }
    }

    /// The server's one-byte answer to SSLRequest / GSSENCRequest.
    fn reply_byte(&mut self, reply: Reply, b: u8, ts: Ts, out: &mut Emitter) {
        self.reply = None;
        let (name, accept) = match reply {
            Reply::Ssl => ("ssl_reply", b'S'),
            Reply::Gss => ("gssenc_reply", b'G'),
        };
        if let Some(resp) = self.resp(ts, false, out) {
            resp.backend = Some(name.into());
            resp.backend_arg = Some(vec![b]);
            resp.success = Some(b == accept);
        }
        self.end_response(ts, true, out);
        if b == accept {
            // The rest is TLS (GSSAPI): nothing more to parse.
            self.close_request(out);
            self.finished = true;
            self.rd[0].mode = Mode::Off;
            self.rd[1].mode = Mode::Off;
        }
    }

    fn give_up(&mut self, out: &mut Emitter) {
        out.weird("postgresql_gave_up");
        self.gave_up = true;
        self.rd[0].mode = Mode::Off;
        self.rd[1].mode = Mode::Off;
    }

    /// Lost framing: looks for a message to resynchronise on. Returns the bytes from there
    /// (empty if none was found).
    fn resync(&mut self, d: usize, data: &[u8], out: &mut Emitter) -> Option<Vec<u8>> {
        let r = &mut self.rd[d];
        let mut buf = std::mem::take(&mut r.carry);
        buf.extend_from_slice(data);
        let found = (0..buf.len()).find(|&i| {
            let w = &buf[i..];
            if d == 1 {
                w.len() >= 6 && w[..5] == *b"Z\0\0\0\x05" && matches!(w[5], b'I' | b'T' | b'E')
            } else if w.len() >= 6 && w[0] == b'Q' {
                // A query of plausible size whose text starts like SQL.
                be_u32(w, 1).is_some_and(|l| (6..=1 << 20).contains(&l))
                    && (w[5].is_ascii_graphic() || w[5].is_ascii_whitespace())
            } else {
                w.len() >= 5 && (w[..5] == *b"S\0\0\0\x04" || w[..5] == *b"X\0\0\0\x04")
            }
        });
        match found {
            Some(i) => {
                out.weird("postgresql_resync");
                r.mode = Mode::Typed;
                r.carry.clear();
                Some(buf.split_off(i))
            }
            None => {
                r.scanned += data.len() as u64;
                if r.scanned > MAX_RESYNC_SCAN {
                    out.weird("postgresql_resync_failed");
                    r.mode = Mode::Off;
                    r.carry.clear();
                    if self.rd[0].mode == Mode::Off && self.rd[1].mode == Mode::Off {
                        self.gave_up = true;
                    }
                } else {
                    let keep = buf.len().min(5);
                    r.carry = buf.split_off(buf.len() - keep);
                }
                None
            }
        }
    }

    fn feed(&mut self, d: usize, ts: Ts, mut data: &[u8], out: &mut Emitter) {
        while !data.is_empty() {
            match self.rd[d].mode {
                Mode::Off => return,
                Mode::Lost => {
                    if let Some(rest) = self.resync(d, data, out) {
                        self.feed(d, ts, &rest, out);
                    }
                    return;
                }
                Mode::Initial | Mode::Typed => {}
            }
            let side = if d == 0 {
                Side::Frontend
            } else {
                Side::Backend
            };
            let r = &mut self.rd[d];
            if r.cur.is_none() {
                if d == 1
                    && r.hdr_len == 0
                    && let Some(reply) = self.reply
                {
                    let b = data[0];
                    let accept = if reply == Reply::Ssl { b'S' } else { b'G' };
                    if b == accept || b == b'N' {
                        data = &data[1..];
                        self.reply_byte(reply, b, ts, out);
                        continue;
                    }
                    // Not a one-byte reply (an old server's ErrorResponse): typed from here.
                    out.weird("postgresql_unexpected_encryption_reply");
                    self.reply = None;
                }
                let r = &mut self.rd[d];
                if r.hdr_len == 0 && r.mode == Mode::Initial && data[0] != 0 {
                    // A typed message where an untyped one may come: the capture began
                    // after the startup.
                    r.mode = Mode::Typed;
                }
                let untyped = r.mode == Mode::Initial;
                let need = if untyped { 4 } else { 5 };
                let n = (need - r.hdr_len).min(data.len());
                r.hdr[r.hdr_len..r.hdr_len + n].copy_from_slice(&data[..n]);
                r.hdr_len += n;
                data = &data[n..];
                if r.hdr_len < need {
                    return;
                }
                r.hdr_len = 0;
                let (typ, len) = if untyped {
                    (
                        0,
                        u32::from_be_bytes([r.hdr[0], r.hdr[1], r.hdr[2], r.hdr[3]]),
                    )
                } else {
                    (
                        r.hdr[0],
                        u32::from_be_bytes([r.hdr[1], r.hdr[2], r.hdr[3], r.hdr[4]]),
                    )
                };
                let check = if untyped {
                    if (8..=wire::MAX_STARTUP_LEN).contains(&len) {
                        Ok(())
                    } else {
                        Err(wire::Error::BadLength)
                    }
                } else {
                    wire::check_header(side, typ, len)
                };
                if let Err(e) = check {
                    out.weird(e.weird());
                    if untyped {
                        self.give_up(out);
                        return;
                    }
                    let hdr = r.hdr;
                    r.lose();
                    // The header's own bytes after its first may hold the next message.
                    r.carry = hdr[1..].to_vec();
                    self.lost_framing(d, ts, out);
                    continue;
                }
                if !untyped && !wire::known_type(side, typ) {
                    out.weird("postgresql_unknown_message_type");
                }
                let keep_max = keep_limit(side, typ);
                r.cur = Some(Cur {
                    typ,
                    len,
                    remaining: u64::from(len) - 4,
                    keep: Vec::with_capacity(keep_max.min(len as usize - 4)),
                    keep_max,
                    start: ts,
                    cut: false,
                });
            }
            let r = &mut self.rd[d];
            let Some(cur) = r.cur.as_mut() else { continue };
            let n = usize::try_from(cur.remaining).map_or(data.len(), |rem| rem.min(data.len()));
            let room = cur.keep_max.saturating_sub(cur.keep.len()).min(n);
            cur.keep.extend_from_slice(&data[..room]);
            cur.remaining -= n as u64;
            data = &data[n..];
            if cur.remaining == 0
                && let Some(m) = r.cur.take()
            {
                self.dispatch(d, m, ts, out);
            }
        }
    }

    /// Bookkeeping when a direction loses its framing: what was in progress is incomplete.
    /// Server bytes were there (or lost) while a request waited: its response has begun.
    fn lost_framing(&mut self, d: usize, ts: Ts, out: &mut Emitter) {
        if d == 0 {
            if let Some(Activity { req: Some(r), .. }) = self.waiting.back_mut() {
                r.cut = true;
            }
        } else if let Some(a) = self.waiting.front_mut() {
            if !a.started {
                a.started = true;
                out.emit(Event::ResponseStart {
                    ts,
                    key: MatchKey::Fifo,
                    fields: Fields::default(),
                });
            }
            a.resp.cut = true;
        } else if let Some(o) = &mut self.orphan {
            o.cut = true;
        }
    }
}

impl Parser for Postgres {
    fn data(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter) {
        self.feed(dir.idx(), ts, data, out);
    }

    fn gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Emitter) {
        let d = dir.idx();
        let r = &mut self.rd[d];
        match r.mode {
            Mode::Off => return,
            Mode::Lost => {
                // Whatever was carried is not adjacent to what comes next.
                r.carry.clear();
                return;
            }
            Mode::Initial | Mode::Typed => {}
        }
        if let Some(cur) = r.cur.as_mut()
            && len <= cur.remaining
        {
            // Inside one body: the framing holds; the message is incomplete.
            out.weird("postgresql_gap_in_message");
            cur.cut = true;
            cur.keep_max = cur.keep.len();
            cur.remaining -= len;
            if d == 0
                && let Some(Activity { req: Some(q), .. }) = self.waiting.back_mut()
            {
                q.cut = true;
            }
            if cur.remaining == 0
                && let Some(m) = r.cur.take()
            {
                let ts = m.start;
                self.dispatch(d, m, ts, out);
            }
            return;
        }
        out.weird("postgresql_gap_lost_sync");
        r.lose();
        self.lost_framing(d, ts, out);
    }

    fn end(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let d = dir.idx();
        if self.rd[d].ended {
            return;
        }
        self.rd[d].ended = true;
        let r = &mut self.rd[d];
        if r.cur.is_some() || r.hdr_len > 0 {
            if r.mode != Mode::Off {
                out.weird("postgresql_message_cut_short");
            }
            r.cur = None;
            r.hdr_len = 0;
            self.lost_framing(d, ts, out);
        }
        if d == 0 {
            self.close_request(out);
        } else {
            // What the server had not finished answering stays unfinished.
            self.end_response(ts, false, out);
        }
    }

    fn state(&self) -> ParserState {
        if self.finished {
            ParserState::Finished
        } else if self.gave_up {
            ParserState::GaveUp
        } else {
            ParserState::Active
        }
    }
}
