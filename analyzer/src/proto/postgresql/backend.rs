//! The server side of the PostgreSQL parser: each message is added to the response in
//! progress ([`Resp`]) — authentication, parameters, errors and notices, rows, command tags,
//! COPY data — until the ReadyForQuery (or the error) that ends it, and the one-byte answers
//! to SSL and GSSAPI requests.

use super::wire;
use super::{Cur, Kind, MAX_LIST, Mode, Postgres, Reply, Resp, bounded, bounded_text};
use crate::l7::{Emitter, Event, MatchKey};
use crate::model::{Fields, Ts, Value, text_of};
use crate::read::be_u32;

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

    fn fields(self, kind: Option<Kind>, mut f: Fields) -> Fields {
        if let Some(b) = self.backend {
            f.set("backend", Value::owned(b.into_bytes()));
        }
        if let Some(a) = self.backend_arg {
            f.set("backend_arg", Value::owned(a));
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
                    f.set(n, Value::owned(v));
                }
            }
        }
        if self.notices > 0 {
            f.set("notices", Value::U64(self.notices));
        }
        if let Some(s) = self.ready {
            f.set("transaction_status", Value::text([s]));
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
            f.set("auth_method", Value::owned(m.into_bytes()));
        }
        if !self.sasl_offered.is_empty() {
            f.set("sasl_mechanisms", Value::List(self.sasl_offered));
        }
        if let Some(v) = self.server_version {
            f.set("server_version", Value::owned(v));
        }
        if let Some(p) = self.backend_pid {
            f.set("backend_pid", Value::U64(u64::from(p)));
        }
        f
    }
}

impl Postgres {
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
    pub(super) fn end_response(&mut self, ts: Ts, complete: bool, out: &mut Emitter) {
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
            let fields = a.resp.fields(Some(a.kind), out.fields());
            out.emit(Event::ResponseEnd {
                ts,
                key: MatchKey::Fifo,
                fields,
                complete,
            });
        } else if let Some(r) = self.orphan.take() {
            let complete = complete && !r.cut;
            let fields = r.fields(None, out.fields());
            out.emit(Event::ResponseEnd {
                ts,
                key: MatchKey::Fifo,
                fields,
                complete,
            });
        }
    }

    /// A whole server message (or the prefix of it that was kept).
    pub(super) fn backend(&mut self, m: Cur, body: &[u8], end: Ts, out: &mut Emitter) {
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
                            .map(text_of)
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
                    resp.tags.push(bounded_text(tag, 256));
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

    /// The server's one-byte answer to SSLRequest / GSSENCRequest.
    pub(super) fn reply_byte(&mut self, reply: Reply, b: u8, ts: Ts, out: &mut Emitter) {
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
}
