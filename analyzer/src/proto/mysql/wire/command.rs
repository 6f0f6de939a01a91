//! MySQL commands: the first byte of a client packet after the login, as an enum whose
//! unknown codes are [`Command::Unknown`], with the names logs show.

use std::borrow::Cow;

/// A command: the first byte of a client packet after the login (MySQL's `COM_*` codes and
/// MariaDB's additions). A code no variant names is kept as [`Command::Unknown`]; converting
/// from a byte never yields `Unknown` for a code a variant has, so `u8` → [`Command`] → `u8`
/// gives the byte back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// COM_SLEEP (0x00), internal to the server.
    Sleep,
    /// COM_QUIT (0x01): no response.
    Quit,
    /// COM_INIT_DB (0x02).
    InitDb,
    /// COM_QUERY (0x03).
    Query,
    /// COM_FIELD_LIST (0x04).
    FieldList,
    /// COM_CREATE_DB (0x05).
    CreateDb,
    /// COM_DROP_DB (0x06).
    DropDb,
    /// COM_REFRESH (0x07).
    Refresh,
    /// COM_SHUTDOWN (0x08).
    Shutdown,
    /// COM_STATISTICS (0x09).
    Statistics,
    /// COM_PROCESS_INFO (0x0a).
    ProcessInfo,
    /// COM_CONNECT (0x0b), internal to the server.
    Connect,
    /// COM_PROCESS_KILL (0x0c).
    ProcessKill,
    /// COM_DEBUG (0x0d).
    Debug,
    /// COM_PING (0x0e).
    Ping,
    /// COM_TIME (0x0f), internal to the server.
    Time,
    /// COM_DELAYED_INSERT (0x10), internal to the server.
    DelayedInsert,
    /// COM_CHANGE_USER (0x11).
    ChangeUser,
    /// COM_BINLOG_DUMP (0x12): a replication stream follows.
    BinlogDump,
    /// COM_TABLE_DUMP (0x13).
    TableDump,
    /// COM_CONNECT_OUT (0x14), internal to the server.
    ConnectOut,
    /// COM_REGISTER_SLAVE (0x15).
    RegisterSlave,
    /// COM_STMT_PREPARE (0x16).
    StmtPrepare,
    /// COM_STMT_EXECUTE (0x17).
    StmtExecute,
    /// COM_STMT_SEND_LONG_DATA (0x18): no response.
    StmtSendLongData,
    /// COM_STMT_CLOSE (0x19): no response.
    StmtClose,
    /// COM_STMT_RESET (0x1a).
    StmtReset,
    /// COM_SET_OPTION (0x1b).
    SetOption,
    /// COM_STMT_FETCH (0x1c).
    StmtFetch,
    /// COM_DAEMON (0x1d), internal to the server.
    Daemon,
    /// COM_BINLOG_DUMP_GTID (0x1e): a replication stream follows.
    BinlogDumpGtid,
    /// COM_RESET_CONNECTION (0x1f), the last standard code.
    ResetConnection,
    /// MariaDB COM_STMT_BULK_EXECUTE (0xfa).
    StmtBulkExecute,
    /// MariaDB COM_MULTI (0xfe): several commands in one packet. Zeek has no name
    /// for it.
    Multi,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for Command {
    fn from(code: u8) -> Self {
        match code {
            0x00 => Command::Sleep,
            0x01 => Command::Quit,
            0x02 => Command::InitDb,
            0x03 => Command::Query,
            0x04 => Command::FieldList,
            0x05 => Command::CreateDb,
            0x06 => Command::DropDb,
            0x07 => Command::Refresh,
            0x08 => Command::Shutdown,
            0x09 => Command::Statistics,
            0x0a => Command::ProcessInfo,
            0x0b => Command::Connect,
            0x0c => Command::ProcessKill,
            0x0d => Command::Debug,
            0x0e => Command::Ping,
            0x0f => Command::Time,
            0x10 => Command::DelayedInsert,
            0x11 => Command::ChangeUser,
            0x12 => Command::BinlogDump,
            0x13 => Command::TableDump,
            0x14 => Command::ConnectOut,
            0x15 => Command::RegisterSlave,
            0x16 => Command::StmtPrepare,
            0x17 => Command::StmtExecute,
            0x18 => Command::StmtSendLongData,
            0x19 => Command::StmtClose,
            0x1a => Command::StmtReset,
            0x1b => Command::SetOption,
            0x1c => Command::StmtFetch,
            0x1d => Command::Daemon,
            0x1e => Command::BinlogDumpGtid,
            0x1f => Command::ResetConnection,
            0xfa => Command::StmtBulkExecute,
            0xfe => Command::Multi,
            other => Command::Unknown(other),
        }
    }
}

impl From<Command> for u8 {
    fn from(c: Command) -> u8 {
        match c {
            Command::Sleep => 0x00,
            Command::Quit => 0x01,
            Command::InitDb => 0x02,
            Command::Query => 0x03,
            Command::FieldList => 0x04,
            Command::CreateDb => 0x05,
            Command::DropDb => 0x06,
            Command::Refresh => 0x07,
            Command::Shutdown => 0x08,
            Command::Statistics => 0x09,
            Command::ProcessInfo => 0x0a,
            Command::Connect => 0x0b,
            Command::ProcessKill => 0x0c,
            Command::Debug => 0x0d,
            Command::Ping => 0x0e,
            Command::Time => 0x0f,
            Command::DelayedInsert => 0x10,
            Command::ChangeUser => 0x11,
            Command::BinlogDump => 0x12,
            Command::TableDump => 0x13,
            Command::ConnectOut => 0x14,
            Command::RegisterSlave => 0x15,
            Command::StmtPrepare => 0x16,
            Command::StmtExecute => 0x17,
            Command::StmtSendLongData => 0x18,
            Command::StmtClose => 0x19,
            Command::StmtReset => 0x1a,
            Command::SetOption => 0x1b,
            Command::StmtFetch => 0x1c,
            Command::Daemon => 0x1d,
            Command::BinlogDumpGtid => 0x1e,
            Command::ResetConnection => 0x1f,
            Command::StmtBulkExecute => 0xfa,
            Command::Multi => 0xfe,
            Command::Unknown(other) => other,
        }
    }
}

impl Command {
    /// Zeek's name (`MySQL::commands`), and MariaDB's bulk execute; `None` for COM_MULTI and
    /// unknown codes.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Command::Sleep => "sleep",
            Command::Quit => "quit",
            Command::InitDb => "init_db",
            Command::Query => "query",
            Command::FieldList => "field_list",
            Command::CreateDb => "create_db",
            Command::DropDb => "drop_db",
            Command::Refresh => "refresh",
            Command::Shutdown => "shutdown",
            Command::Statistics => "statistics",
            Command::ProcessInfo => "process_info",
            Command::Connect => "connect",
            Command::ProcessKill => "process_kill",
            Command::Debug => "debug",
            Command::Ping => "ping",
            Command::Time => "time",
            Command::DelayedInsert => "delayed_insert",
            Command::ChangeUser => "change_user",
            Command::BinlogDump => "binlog_dump",
            Command::TableDump => "table_dump",
            Command::ConnectOut => "connect_out",
            Command::RegisterSlave => "register_slave",
            Command::StmtPrepare => "stmt_prepare",
            Command::StmtExecute => "stmt_execute",
            Command::StmtSendLongData => "stmt_send_long_data",
            Command::StmtClose => "stmt_close",
            Command::StmtReset => "stmt_reset",
            Command::SetOption => "set_option",
            Command::StmtFetch => "stmt_fetch",
            Command::Daemon => "daemon",
            Command::BinlogDumpGtid => "binlog_dump_gtid",
            Command::ResetConnection => "reset_connection",
            Command::StmtBulkExecute => "stmt_bulk_execute",
            Command::Multi | Command::Unknown(_) => return None,
        })
    }

    /// The name logs show (the `command` field, `mysql.log`'s `cmd`): [`Command::name`], else
    /// `unknown-` and the code in decimal.
    pub fn log_name(self) -> Cow<'static, str> {
        match self.name() {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(format!("unknown-{}", u8::from(self))),
        }
    }
}

/// Zeek's name of the command with code `code` ([`Command::name`]).
pub fn command_name(code: u8) -> Option<&'static str> {
    Command::from(code).name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        // Every byte comes back; only codes no variant has are `Unknown`.
        for code in 0..=255u8 {
            let c = Command::from(code);
            assert_eq!(u8::from(c), code);
            assert_eq!(
                matches!(c, Command::Unknown(_)),
                code > 0x1f && code != 0xfa && code != 0xfe
            );
        }
        let cases: &[(u8, Command, &str)] = &[
            (0x00, Command::Sleep, "sleep"),
            (0x03, Command::Query, "query"),
            (0x0e, Command::Ping, "ping"),
            (0x16, Command::StmtPrepare, "stmt_prepare"),
            (0x1f, Command::ResetConnection, "reset_connection"),
            (0xfa, Command::StmtBulkExecute, "stmt_bulk_execute"),
            // Zeek names neither.
            (0xfe, Command::Multi, "unknown-254"),
            (0x20, Command::Unknown(0x20), "unknown-32"),
        ];
        for &(code, c, log) in cases {
            assert_eq!(Command::from(code), c);
            assert_eq!(c.log_name(), log);
            assert_eq!(command_name(code), c.name());
        }
        assert_eq!(Command::Multi.name(), None);
        // Zeek's `MySQL::commands`, by code.
        let zeek = [
            "sleep",
            "quit",
            "init_db",
            "query",
            "field_list",
            "create_db",
            "drop_db",
            "refresh",
            "shutdown",
            "statistics",
            "process_info",
            "connect",
            "process_kill",
            "debug",
            "ping",
            "time",
            "delayed_insert",
            "change_user",
            "binlog_dump",
            "table_dump",
            "connect_out",
            "register_slave",
            "stmt_prepare",
            "stmt_execute",
            "stmt_send_long_data",
            "stmt_close",
            "stmt_reset",
            "set_option",
            "stmt_fetch",
            "daemon",
            "binlog_dump_gtid",
            "reset_connection",
        ];
        for (code, name) in (0u8..).zip(zeek) {
            assert_eq!(command_name(code), Some(name));
        }
    }
}
