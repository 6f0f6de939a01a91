//! The client side of the MySQL parser: the handshake response (the login) and commands
//! become requests; commands that expect a response are queued with what the response will
//! look like ([`Expect`]).

use super::framing::Meta;
use super::wire::{self, Command, cap};
use super::{
    Acc, Expect, MAX_ARG, MAX_PENDING, MAX_STATEMENT_SQL, MAX_TEXT, Mysql, Pending, Phase, Sync,
    bounded,
};
use crate::l7::{Emitter, Event, MatchKey, ParserState};
use crate::model::{Dir, Fields, Value};
use crate::read::le_u32;

/// A text field (user, database, plugin names), cut to [`MAX_TEXT`] bytes.
fn text(b: &[u8]) -> Value {
    Value::owned(bounded(b, MAX_TEXT).0)
}

impl Mysql {
    /// A client packet: the handshake response after the greeting, else a command or a
    /// packet inside an exchange.
    pub(super) fn client_packet(&mut self, m: Meta, p: &[u8], out: &mut Emitter) {
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
            f.set("server_version", Value::text(v));
        }
        if let Some(id) = self.connection_id {
            f.set("connection_id", Value::U64(u64::from(id)));
        }
        if let Some(a) = &self.server_auth_plugin {
            f.set("server_auth_plugin", Value::text(a));
        }
        if self.compressed {
            f.set("compressed", Value::Bool(true));
        }
        self.request(m, f, Some(Expect::Auth), None, None, out);
    }

    /// Emits a request (`command`: `None` for the login) and, when it has a response, queues
    /// it.
    fn request(
        &mut self,
        m: Meta,
        fields: Fields,
        expect: Option<Expect>,
        sql: Option<Vec<u8>>,
        command: Option<Command>,
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
            command,
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

    /// A command packet (sequence 0): its request, and what its response will look like.
    pub(super) fn command(&mut self, m: Meta, p: &[u8], out: &mut Emitter) {
        let Some((&code, arg)) = p.split_first() else {
            out.weird("mysql_empty_command");
            return;
        };
        let command = Command::from(code);
        let mut f = Fields::default();
        f.set("command", Value::text(command.log_name().as_bytes()));
        // The kept bytes end early: a gap, or a packet longer than what is kept.
        let cut = m.lost || (p.len() as u64) < m.len;
        let set_arg = |f: &mut Fields, a: &[u8]| {
            // Zeek drops one trailing NUL (some clients, mysqlslap among them, send one).
            let a = a.strip_suffix(&[0]).unwrap_or(a);
            let (v, c) = bounded(a, MAX_ARG);
            f.set("argument", Value::owned(v));
            if c || cut {
                f.set("argument_truncated", Value::Bool(true));
            }
        };
        let stmt_id = |a: &[u8]| le_u32(a, 0);
        let mut expect = Some(Expect::Status);
        let mut sql = None;
        match command {
            Command::Query => {
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
            Command::StmtPrepare => {
                set_arg(&mut f, arg);
                let s = bounded(arg, MAX_STATEMENT_SQL).0;
                self.last_prepare = Some(s.clone());
                sql = Some(s);
                expect = Some(Expect::Prepare);
            }
            Command::StmtExecute
            | Command::StmtBulkExecute
            | Command::StmtFetch
            | Command::StmtClose
            | Command::StmtReset
            | Command::StmtSendLongData => {
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
                expect = match command {
                    Command::StmtExecute | Command::StmtBulkExecute => Some(Expect::Result),
                    Command::StmtFetch => Some(Expect::Rows),
                    Command::StmtReset => Some(Expect::Status),
                    _ => None,
                };
                if command == Command::StmtClose
                    && let Some(id) = stmt_id(arg)
                {
                    self.statements.retain(|(i, _)| *i != id);
                }
            }
            Command::Quit => expect = None,
            Command::ChangeUser => {
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
            Command::FieldList => {
                let mut r = wire::Reader::new(arg);
                let table = r.nul_str();
                let wildcard = r.rest();
                set_arg(&mut f, table);
                if !wildcard.is_empty() {
                    f.set("field_wildcard", text(wildcard));
                }
                expect = Some(Expect::FieldList);
            }
            Command::InitDb | Command::CreateDb | Command::DropDb => set_arg(&mut f, arg),
            Command::Statistics => expect = Some(Expect::Statistics),
            Command::ProcessInfo => expect = Some(Expect::Result),
            Command::ProcessKill => match stmt_id(arg) {
                Some(id) => set_arg(&mut f, id.to_string().as_bytes()),
                None => out.weird("mysql_truncated_packet"),
            },
            Command::BinlogDump | Command::BinlogDumpGtid | Command::TableDump => {
                // A replication stream follows, not responses: stop here.
                expect = None;
                self.state = ParserState::Finished;
            }
            Command::Multi => {
                // MariaDB's COM_MULTI bundles commands whose responses this parser does not
                // split: stop rather than mispair them.
                out.weird("mysql_com_multi_unsupported");
                expect = None;
                self.state = ParserState::Finished;
            }
            // The rest of the commands Zeek names: an argument if any, and an OK or ERR.
            Command::Sleep
            | Command::Refresh
            | Command::Shutdown
            | Command::Connect
            | Command::Debug
            | Command::Ping
            | Command::Time
            | Command::DelayedInsert
            | Command::ConnectOut
            | Command::RegisterSlave
            | Command::SetOption
            | Command::Daemon
            | Command::ResetConnection => {
                if !arg.is_empty() {
                    set_arg(&mut f, arg);
                }
            }
            Command::Unknown(_) => {
                out.weird("mysql_unknown_command");
                if !arg.is_empty() {
                    set_arg(&mut f, arg);
                }
                expect = Some(Expect::Single);
            }
        }
        self.request(m, f, expect, sql, Some(command), out);
    }
}
