//! The server side of the MySQL parser: the greeting, and each pending command's response
//! followed packet by packet (OK, ERR, EOF, result sets, LOCAL INFILE, prepared statement
//! definitions, auth switches) until it is complete.

use super::framing::Meta;
use super::wire::{self, MAX_PAYLOAD, cap, status};
use super::{Acc, Expect, MAX_STATEMENTS, MAX_TEXT, Mysql, Pending, Phase, bounded};
use crate::l7::{Emitter, Event, MatchKey, ParserState};
use crate::model::{Dir, Fields, Value};

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

impl Mysql {
    /// A server packet: the greeting, else the next packet of the oldest pending command's
    /// response.
    pub(super) fn server_packet(&mut self, m: Meta, p: &[u8], out: &mut Emitter) {
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
                    if self.compressed && cur.command.is_none() {
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
                f.set("sql_state", Value::text(s));
            }
            f.set("error_message", Value::text(msg));
            f.set("response", Value::text(msg));
        }
        if let Some(i) = &acc.info {
            f.set("info", Value::text(i));
        }
        if let Some(id) = acc.statement_id {
            f.set("statement_id", Value::U64(u64::from(id)));
        }
        if let Some(n) = acc.params {
            f.set("params", Value::U64(u64::from(n)));
        }
        if let Some(i) = &acc.infile {
            f.set("infile", Value::text(i));
        }
        if let Some(n) = acc.infile_bytes {
            f.set("infile_bytes", Value::U64(n));
        }
        if let Some(a) = &acc.auth_switch {
            f.set("auth_switch", Value::text(a));
        }
        if acc.progress_reports > 0 {
            f.set("progress_reports", Value::U64(acc.progress_reports));
        }
        f
    }

    /// Emits the end of a pending command's response.
    pub(super) fn finish(&mut self, cur: Pending, out: &mut Emitter) {
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
}
