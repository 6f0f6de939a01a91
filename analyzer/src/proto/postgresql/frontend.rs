//! The client side of the PostgreSQL parser: untyped first messages, queries, extended-
//! protocol cycles (with the statement and portal tables that give an Execute its SQL),
//! function calls, authentication responses and COPY data become requests ([`Kind`]).

use std::collections::VecDeque;
use std::sync::Arc;

use super::wire::{self, Untyped};
use super::{
    Activity, Cur, Kind, MAX_LIST, MAX_PORTALS, MAX_SQL, MAX_STATEMENTS, MAX_WAITING, Mode, Named,
    OpenReq, Postgres, Reply, Resp, Sql, bounded,
};
use crate::l7::{Emitter, Event, MatchKey};
use crate::model::{Fields, Text, Ts, Value, text_of};
use crate::read::be_u32;

/// Fields an exchange's list makes room for when it is made (see `conn_fields`).
const EXCHANGE_ROOM: usize = 12;

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
    fn conn_fields(&self, kind: &str) -> Fields {
        // This list becomes the exchange's: the request's fields and the response's are
        // merged into it, 9 or 10 in pgbench's exchanges (growing from 8 cost a reallocation
        // per exchange).
        let mut f = Fields::with_room(EXCHANGE_ROOM);
        for (n, v) in [
            ("user", &self.user),
            ("database", &self.database),
            ("application_name", &self.application_name),
        ] {
            if let Some(v) = v {
                f.set(n, Value::text(v));
            }
        }
        f.set("frontend", Value::text(kind));
        f
    }

    /// Ends the open request, if any.
    pub(super) fn close_request(&mut self, out: &mut Emitter) {
        let Some(a) = self.waiting.back_mut() else {
            return;
        };
        let Some(r) = a.req.take() else { return };
        let mut f = Fields::default();
        if a.kind == Kind::Extended {
            if let Some((sql, cut)) = r.sql {
                f.set("frontend_arg", Value::text(sql));
                if cut {
                    f.set("query_truncated", Value::Bool(true));
                }
            }
            if let Some(s) = r.statement {
                f.set("statement", Value::owned(s));
            }
            if let Some(p) = r.portal {
                f.set("portal", Value::owned(p));
            }
            f.set("messages", Value::List(r.messages));
            f.set("message_count", Value::U64(r.n_messages));
            f.set("executes", Value::U64(r.executes));
        }
        if let Some(m) = r.sasl_mechanism {
            f.set("sasl_mechanism", Value::owned(m));
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

    fn frontend_untyped(&mut self, m: &Cur, body: &[u8], end: Ts, out: &mut Emitter) {
        let msg = match wire::parse_untyped(m.len, body) {
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
                            others.push(text_of(p));
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

    /// A whole client message (or the prefix of it that was kept).
    pub(super) fn frontend(&mut self, m: Cur, body: &[u8], end: Ts, out: &mut Emitter) {
        if m.typ == 0 {
            self.frontend_untyped(&m, body, end, out);
            return;
        }
        let whole = !m.cut && body.len() as u64 + 4 == u64::from(m.len);
        match m.typ {
            b'Q' => {
                let mut pos = 0;
                let (sql, sql_cut) = wire::cstr_or_rest(body, &mut pos);
                let mut f = self.conn_fields(Kind::SimpleQuery.name());
                f.set("frontend_arg", Value::owned(bounded(sql, MAX_SQL)));
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
            b'P' | b'B' | b'D' | b'E' | b'C' | b'H' | b'S' => {
                self.extended_message(m, body, end, out)
            }
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
                                && resp.sasl_offered.iter().any(|o| o[..] == *mech)
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

    fn extended_message(&mut self, m: Cur, body: &[u8], end: Ts, out: &mut Emitter) {
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
                .push(Text::from_slice(wire::frontend_name(m.typ).as_bytes()));
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
}
