//! The MySQL client/server wire format (MySQL and MariaDB): packet headers, commands,
//! capability and status flags, length-encoded integers and strings, and the packets the
//! parser reads. Pure functions over one packet's bytes; cutting a stream into packets is
//! [`super::framing`]'s.
//!
//! Every read is bounds-checked ([`Reader`]); a packet that ends early or holds an impossible
//! value is an [`Error`], never a panic.

mod command;

pub use command::{Command, command_name};

use crate::read;

/// Bytes of a packet header: a 24-bit little-endian payload length and a sequence id.
pub const HEADER_LEN: usize = 4;
/// The largest payload of one physical packet; a payload of exactly this length is continued
/// by the next packet (one logical packet, "more than 16 MiB").
pub const MAX_PAYLOAD: usize = 0xff_ffff;

/// The payload length in the packet header at the start of `b`, if its three bytes are there.
pub fn payload_len(b: &[u8]) -> Option<usize> {
    read::le_u24(b, 0).map(|n| n as usize)
}

/// Capability flags (the low 32 bits are MySQL's; MariaDB's extended flags are shifted
/// into the high 32 bits).
pub mod cap {
    /// Set by MySQL servers; a MariaDB server clears it and puts its extended flags in the
    /// greeting's reserved bytes.
    pub const CLIENT_MYSQL: u64 = 1;
    /// `CLIENT_CONNECT_WITH_DB`: the handshake response names a database.
    pub const CONNECT_WITH_DB: u64 = 0x8;
    /// `CLIENT_COMPRESS`: packets are compressed after the handshake.
    pub const COMPRESS: u64 = 0x20;
    /// `CLIENT_PROTOCOL_41`.
    pub const PROTOCOL_41: u64 = 0x200;
    /// `CLIENT_SSL`: TLS follows the (short) handshake response.
    pub const SSL: u64 = 0x800;
    /// `CLIENT_TRANSACTIONS`: OK packets carry status flags (with or without 4.1).
    pub const TRANSACTIONS: u64 = 0x2000;
    /// `CLIENT_SECURE_CONNECTION`: the auth response has a one-byte length.
    pub const SECURE_CONNECTION: u64 = 0x8000;
    /// `CLIENT_PLUGIN_AUTH`: auth plugin names are exchanged.
    pub const PLUGIN_AUTH: u64 = 0x8_0000;
    /// `CLIENT_CONNECT_ATTRS`: the handshake response carries key/value attributes.
    pub const CONNECT_ATTRS: u64 = 0x10_0000;
    /// `CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA`: the auth response has a lenenc length.
    pub const PLUGIN_AUTH_LENENC: u64 = 0x20_0000;
    /// `CLIENT_SESSION_TRACK`: OK packets may carry session state changes.
    pub const SESSION_TRACK: u64 = 0x80_0000;
    /// `CLIENT_DEPRECATE_EOF`: OK packets replace EOF packets in result sets.
    pub const DEPRECATE_EOF: u64 = 0x100_0000;
    /// `CLIENT_OPTIONAL_RESULTSET_METADATA`: column counts carry a metadata-follows byte.
    pub const OPTIONAL_RESULTSET_METADATA: u64 = 0x200_0000;
    /// `CLIENT_ZSTD_COMPRESSION_ALGORITHM`.
    pub const ZSTD: u64 = 0x400_0000;
    /// `CLIENT_QUERY_ATTRIBUTES`: COM_QUERY and COM_STMT_EXECUTE carry attributes.
    pub const QUERY_ATTRIBUTES: u64 = 0x800_0000;
    /// MariaDB `MARIADB_CLIENT_PROGRESS`: progress reports (ERR 0xffff) inside responses.
    pub const MARIADB_PROGRESS: u64 = 1 << 32;
    /// MariaDB `MARIADB_CLIENT_CACHE_METADATA`: column counts carry a metadata-follows byte.
    pub const MARIADB_CACHE_METADATA: u64 = 1 << 36;
}

/// Server status flags (OK and EOF packets).
pub mod status {
    /// `SERVER_MORE_RESULTS_EXISTS`: another result follows this one.
    pub const MORE_RESULTS: u16 = 0x0008;
    /// `SERVER_STATUS_CURSOR_EXISTS`: a cursor was opened; rows come with COM_STMT_FETCH.
    pub const CURSOR_EXISTS: u16 = 0x0040;
}

/// Why a packet could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The packet ends before a field does.
    Truncated,
    /// A length-encoded integer starts with 0xff (or 0xfb where NULL is impossible).
    BadLenenc,
    /// The greeting's protocol version is not 10.
    BadProtocolVersion,
    /// Query attributes that do not parse (unknown type, counts beyond the packet).
    BadQueryAttributes,
}

impl Error {
    /// The weird name.
    pub fn weird(self) -> &'static str {
        match self {
            Error::Truncated => "mysql_truncated_packet",
            Error::BadLenenc => "mysql_bad_length_encoded_integer",
            Error::BadProtocolVersion => "mysql_unsupported_protocol_version",
            Error::BadQueryAttributes => "mysql_bad_query_attributes",
        }
    }
}

/// MySQL's reading of a payload: little-endian integers and MySQL's length-encoded ones and
/// strings over the shared checked [`read::Reader`], failing with [`Error::Truncated`].
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a>(read::Reader<'a>);

impl<'a> Reader<'a> {
    /// Reads `b` from its start.
    pub fn new(b: &'a [u8]) -> Self {
        Reader(read::Reader::new(b))
    }
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.0.remaining()
    }
    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        self.0.take(n).ok_or(Error::Truncated)
    }
    /// The rest.
    pub fn rest(&mut self) -> &'a [u8] {
        self.0.rest()
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Error> {
        self.0.u8().ok_or(Error::Truncated)
    }
    /// Little-endian u16.
    pub fn u16(&mut self) -> Result<u16, Error> {
        self.0.le_u16().ok_or(Error::Truncated)
    }
    /// Little-endian u32.
    pub fn u32(&mut self) -> Result<u32, Error> {
        self.0.le_u32().ok_or(Error::Truncated)
    }
    /// A length-encoded integer; NULL (0xfb) and 0xff are errors.
    pub fn lenenc(&mut self) -> Result<u64, Error> {
        let n = match self.u8()? {
            b @ 0..=0xfa => return Ok(u64::from(b)),
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            _ => return Err(Error::BadLenenc),
        };
        self.0.le_uint(n).ok_or(Error::Truncated)
    }
    /// A length-encoded string.
    pub fn lenenc_bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = self.lenenc()?;
        self.take(usize::try_from(n).map_err(|_| Error::Truncated)?)
    }
    /// A NUL-terminated string (without its NUL); without a NUL, the rest.
    pub fn nul_str(&mut self) -> &'a [u8] {
        match self.0.until(0) {
            Some(s) => s,
            None => self.rest(),
        }
    }
    /// A NUL-terminated string that must have its NUL.
    pub fn nul_str_strict(&mut self) -> Result<&'a [u8], Error> {
        self.0.until(0).ok_or(Error::Truncated)
    }
}

/// The server's initial handshake (protocol version 10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting<'a> {
    /// Server version string.
    pub server_version: &'a [u8],
    /// Connection (thread) id.
    pub connection_id: u32,
    /// Capabilities (MariaDB's extended ones in the high 32 bits).
    pub capabilities: u64,
    /// Default auth plugin, when the server names one.
    pub auth_plugin: Option<&'a [u8]>,
}

/// Parses a greeting payload. The fields after the capability flags' low half are optional
/// (pre-4.1 servers stop there).
pub fn parse_greeting(p: &[u8]) -> Result<Greeting<'_>, Error> {
    let mut r = Reader::new(p);
    if r.u8()? != 10 {
        return Err(Error::BadProtocolVersion);
    }
    let server_version = r.nul_str_strict()?;
    let connection_id = r.u32()?;
    r.take(8)?; // auth-plugin-data part 1
    r.u8()?; // filler
    let mut caps = u64::from(r.u16()?);
    let mut auth_plugin = None;
    if r.remaining() >= 16 {
        r.u8()?; // character set
        r.u16()?; // status flags
        caps |= u64::from(r.u16()?) << 16;
        let data_len = r.u8()?;
        r.take(6)?;
        let mariadb = r.u32()?;
        if caps & cap::CLIENT_MYSQL == 0 {
            caps |= u64::from(mariadb) << 32;
        }
        if caps & cap::SECURE_CONNECTION != 0 {
            let n = usize::from(data_len).saturating_sub(8).max(13);
            // Some servers end the packet inside the scramble; that is not worth a weird.
            let n = n.min(r.remaining());
            r.take(n)?;
        }
        if caps & cap::PLUGIN_AUTH != 0 && r.remaining() > 0 {
            auth_plugin = Some(r.nul_str());
        }
    }
    Ok(Greeting {
        server_version,
        connection_id,
        capabilities: caps,
        auth_plugin,
    })
}

/// The client's handshake response (or its SSL request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeResponse<'a> {
    /// Client capabilities (MariaDB's extended ones in the high 32 bits).
    pub capabilities: u64,
    /// An SSL request: TLS follows, the real response is encrypted.
    pub ssl_request: bool,
    /// User name.
    pub user: &'a [u8],
    /// Initial database.
    pub database: Option<&'a [u8]>,
    /// Auth plugin the response is for.
    pub auth_plugin: Option<&'a [u8]>,
}

/// Parses a handshake response; `server_caps` (from the greeting) tells MariaDB's extended
/// flags apart from filler.
pub fn parse_handshake_response(
    p: &[u8],
    server_caps: Option<u64>,
) -> Result<HandshakeResponse<'_>, Error> {
    let mut r = Reader::new(p);
    let low = r.u16()?;
    if u64::from(low) & cap::PROTOCOL_41 == 0 {
        // Protocol 3.20: 2-byte capabilities, 3-byte max packet size, user, auth data.
        r.take(3)?;
        let caps = u64::from(low);
        if caps & cap::SSL != 0 && r.remaining() == 0 {
            return Ok(HandshakeResponse {
                capabilities: caps,
                ssl_request: true,
                user: b"",
                database: None,
                auth_plugin: None,
            });
        }
        let user = r.nul_str();
        let mut database = None;
        if caps & cap::CONNECT_WITH_DB != 0 {
            r.nul_str();
            if r.remaining() > 0 {
                database = Some(r.nul_str());
            }
        }
        return Ok(HandshakeResponse {
            capabilities: caps,
            ssl_request: false,
            user,
            database,
            auth_plugin: None,
        });
    }
    let mut caps = u64::from(low) | (u64::from(r.u16()?) << 16);
    r.u32()?; // max packet size
    r.u8()?; // character set
    r.take(19)?;
    let mariadb = r.u32()?;
    if server_caps.is_some_and(|s| s & cap::CLIENT_MYSQL == 0) && caps & cap::CLIENT_MYSQL == 0 {
        caps |= u64::from(mariadb) << 32;
    }
    if r.remaining() == 0 {
        // Only an SSL request ends after the fixed part.
        return Ok(HandshakeResponse {
            capabilities: caps,
            ssl_request: caps & cap::SSL != 0,
            user: b"",
            database: None,
            auth_plugin: None,
        });
    }
    let user = r.nul_str();
    if caps & cap::PLUGIN_AUTH_LENENC != 0 {
        r.lenenc_bytes()?;
    } else if caps & cap::SECURE_CONNECTION != 0 {
        let n = r.u8()?;
        r.take(usize::from(n))?;
    } else {
        r.nul_str();
    }
    let mut database = None;
    if caps & cap::CONNECT_WITH_DB != 0 && r.remaining() > 0 {
        database = Some(r.nul_str());
    }
    let mut auth_plugin = None;
    if caps & cap::PLUGIN_AUTH != 0 && r.remaining() > 0 {
        auth_plugin = Some(r.nul_str());
    }
    Ok(HandshakeResponse {
        capabilities: caps,
        ssl_request: false,
        user,
        database,
        auth_plugin,
    })
}

/// COM_CHANGE_USER's payload after the command byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeUser<'a> {
    /// New user.
    pub user: &'a [u8],
    /// New database.
    pub database: Option<&'a [u8]>,
    /// Auth plugin.
    pub auth_plugin: Option<&'a [u8]>,
}

/// Parses COM_CHANGE_USER (after the command byte); `caps`: negotiated capabilities, if known.
pub fn parse_change_user(p: &[u8], caps: Option<u64>) -> Result<ChangeUser<'_>, Error> {
    let mut r = Reader::new(p);
    let user = r.nul_str_strict()?;
    // Unknown capabilities: every client since 4.1 uses the one-byte length.
    if caps.is_none_or(|c| c & cap::SECURE_CONNECTION != 0) {
        let n = r.u8()?;
        r.take(usize::from(n))?;
    } else {
        r.nul_str();
    }
    let database = (r.remaining() > 0).then(|| r.nul_str());
    let mut auth_plugin = None;
    if r.remaining() >= 2 {
        r.u16()?; // character set
        if caps.is_none_or(|c| c & cap::PLUGIN_AUTH != 0) && r.remaining() > 0 {
            auth_plugin = Some(r.nul_str());
        }
    }
    Ok(ChangeUser {
        user,
        database,
        auth_plugin,
    })
}

/// An OK packet (header 0x00, or 0xfe where it ends a result set under
/// `CLIENT_DEPRECATE_EOF`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OkPacket<'a> {
    /// Affected rows.
    pub affected_rows: u64,
    /// Last insert id.
    pub last_insert_id: u64,
    /// Server status flags (0 when the packet has none).
    pub status: u16,
    /// Warnings.
    pub warnings: u16,
    /// Human-readable info (`Rows matched: 1  Changed: 1  Warnings: 0`), when there is one and
    /// no session-state information follows it.
    pub info: &'a [u8],
}

/// Parses an OK packet (with its header byte); `caps`: negotiated capabilities, if known.
pub fn parse_ok(p: &[u8], caps: Option<u64>) -> Result<OkPacket<'_>, Error> {
    let mut r = Reader::new(p);
    r.u8()?;
    let affected_rows = r.lenenc()?;
    let last_insert_id = r.lenenc()?;
    let mut status = 0;
    let mut warnings = 0;
    let c = caps.unwrap_or(cap::PROTOCOL_41);
    if c & cap::PROTOCOL_41 != 0 {
        if r.remaining() >= 4 {
            status = r.u16()?;
            warnings = r.u16()?;
        }
    } else if c & cap::TRANSACTIONS != 0 && r.remaining() >= 2 {
        status = r.u16()?;
    }
    // With session tracking the info is a lenenc string followed by state changes; without,
    // it is the rest of the packet.
    let info = if c & cap::SESSION_TRACK != 0 {
        if r.remaining() > 0 {
            r.lenenc_bytes().unwrap_or_default()
        } else {
            b""
        }
    } else {
        r.rest()
    };
    Ok(OkPacket {
        affected_rows,
        last_insert_id,
        status,
        warnings,
        info,
    })
}

/// An ERR packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrPacket<'a> {
    /// Error code (0xffff: a MariaDB progress report, not an error).
    pub code: u16,
    /// SQL state (5 characters), when the packet has the `#` marker.
    pub sql_state: Option<&'a [u8]>,
    /// Message.
    pub message: &'a [u8],
}

/// Parses an ERR packet (with its 0xff header byte).
pub fn parse_err(p: &[u8]) -> Result<ErrPacket<'_>, Error> {
    let mut r = Reader::new(p);
    r.u8()?;
    let code = r.u16()?;
    let mut sql_state = None;
    if r.remaining() >= 6 && p[3] == b'#' {
        r.u8()?;
        sql_state = Some(r.take(5)?);
    }
    Ok(ErrPacket {
        code,
        sql_state,
        message: r.rest(),
    })
}

/// Whether a packet is an EOF packet: header 0xfe and at most 5 bytes (4.1: warnings and
/// status; older servers: the header alone).
pub fn is_eof(p: &[u8], len: u64) -> bool {
    p.first() == Some(&0xfe) && len <= 5
}

/// An EOF packet's server status (0 for the pre-4.1 one-byte form).
pub fn eof_status(p: &[u8]) -> u16 {
    match p {
        [0xfe, _, _, ..] => read::le_u16(p, 3).unwrap_or(0),
        _ => 0,
    }
}

/// An EOF packet's warning count.
pub fn eof_warnings(p: &[u8]) -> u16 {
    match p {
        [0xfe, ..] => read::le_u16(p, 1).unwrap_or(0),
        _ => 0,
    }
}

/// COM_STMT_PREPARE's OK response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrepareOk {
    /// Statement id.
    pub statement_id: u32,
    /// Result columns.
    pub columns: u16,
    /// Parameters.
    pub params: u16,
    /// Warnings.
    pub warnings: u16,
    /// Whether column and parameter definitions follow (optional-metadata extension).
    pub metadata: bool,
}

/// Parses COM_STMT_PREPARE's OK response (with its 0x00 header byte).
pub fn parse_prepare_ok(p: &[u8]) -> Result<PrepareOk, Error> {
    let mut r = Reader::new(p);
    r.u8()?;
    let statement_id = r.u32()?;
    let columns = r.u16()?;
    let params = r.u16()?;
    let mut warnings = 0;
    let mut metadata = true;
    if r.remaining() >= 3 {
        r.u8()?;
        warnings = r.u16()?;
        if r.remaining() >= 1 {
            metadata = r.u8()? != 0;
        }
    }
    Ok(PrepareOk {
        statement_id,
        columns,
        params,
        warnings,
        metadata,
    })
}

/// Bytes a binary-protocol value of `ty` takes at `r` (MySQL `enum_field_types`).
fn skip_binary_value(r: &mut Reader<'_>, ty: u8) -> Result<(), Error> {
    match ty {
        // NULL
        6 => {}
        // TINY
        1 => {
            r.take(1)?;
        }
        // SHORT, YEAR
        2 | 13 => {
            r.take(2)?;
        }
        // LONG, FLOAT, INT24
        3 | 4 | 9 => {
            r.take(4)?;
        }
        // DOUBLE, LONGLONG
        5 | 8 => {
            r.take(8)?;
        }
        // TIMESTAMP, DATE, TIME, DATETIME: a length byte and that many bytes
        7 | 10..=12 => {
            let n = r.u8()?;
            r.take(usize::from(n))?;
        }
        // DECIMAL, VARCHAR, BIT, JSON, NEWDECIMAL, ENUM, SET, blobs, strings, GEOMETRY
        0 | 15 | 16 | 245..=255 => {
            r.lenenc_bytes()?;
        }
        _ => return Err(Error::BadQueryAttributes),
    }
    Ok(())
}

/// COM_QUERY's payload after the command byte: query attributes (when `attrs` says the
/// client sends them) and the SQL text. Returns the attribute count and the text.
///
/// `attrs` is `None` when the capabilities are unknown (a connection caught mid-stream):
/// SQL text never starts with a control character, so a payload that does is read as
/// attributes, anything else as text.
pub fn split_query(p: &[u8], attrs: Option<bool>) -> Result<(u64, &[u8]), Error> {
    let with_attrs = match attrs {
        Some(a) => a,
        None => p
            .first()
            .is_some_and(|&c| c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r')),
    };
    if !with_attrs {
        return Ok((0, p));
    }
    let mut r = Reader::new(p);
    let count = r.lenenc()?;
    let sets = r.lenenc()?;
    if sets != 1 && count > 0 {
        return Err(Error::BadQueryAttributes);
    }
    if count > 0 {
        // Every attribute takes at least 3 bytes (type and an empty name).
        if count > r.remaining() as u64 {
            return Err(Error::BadQueryAttributes);
        }
        let n = count as usize;
        let bitmap = r.take(n.div_ceil(8))?;
        if r.u8()? != 1 {
            return Err(Error::BadQueryAttributes);
        }
        let mut types = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let ty = r.u16()?;
            r.lenenc_bytes()?;
            if types.len() < 4096 {
                types.push((ty & 0xff) as u8);
            } else {
                return Err(Error::BadQueryAttributes);
            }
        }
        for (i, &ty) in types.iter().enumerate() {
            if bitmap[i / 8] & (1 << (i % 8)) == 0 {
                skip_binary_value(&mut r, ty)?;
            }
        }
    }
    Ok((count, r.rest()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_forms() {
        let cases: &[(&[u8], Result<u64, Error>)] = &[
            (&[0x00], Ok(0)),
            (&[0xfa], Ok(250)),
            (&[0xfc, 0x34, 0x12], Ok(0x1234)),
            (&[0xfd, 0x56, 0x34, 0x12], Ok(0x12_3456)),
            (
                &[0xfe, 1, 0, 0, 0, 0, 0, 0, 0x80],
                Ok(0x8000_0000_0000_0001),
            ),
            (&[0xfb], Err(Error::BadLenenc)),
            (&[0xff], Err(Error::BadLenenc)),
            (&[0xfc, 0x34], Err(Error::Truncated)),
            (&[], Err(Error::Truncated)),
        ];
        for (b, want) in cases {
            assert_eq!(Reader::new(b).lenenc(), *want, "{b:02x?}");
        }
        // A string claiming 2^63 bytes does not allocate or panic.
        let huge = [0xfe, 0, 0, 0, 0, 0, 0, 0, 0x80, b'x'];
        assert_eq!(Reader::new(&huge).lenenc_bytes(), Err(Error::Truncated));
    }

    #[test]
    fn ok_err_eof() {
        let ok = [
            0x00, 0x03, 0xfc, 0x10, 0x27, 0x02, 0x00, 0x01, 0x00, b'h', b'i',
        ];
        let o = parse_ok(&ok, Some(cap::PROTOCOL_41)).unwrap();
        assert_eq!(
            (
                o.affected_rows,
                o.last_insert_id,
                o.status,
                o.warnings,
                o.info
            ),
            (3, 10000, 2, 1, &b"hi"[..])
        );
        let err = b"\xff\x15\x04#28000Access denied";
        let e = parse_err(err).unwrap();
        assert_eq!(
            (e.code, e.sql_state, e.message),
            (1045, Some(&b"28000"[..]), &b"Access denied"[..])
        );
        // Greeting-time errors have no SQL state.
        let e = parse_err(b"\xff\x6a\x04Host 'x' is not allowed").unwrap();
        assert_eq!((e.code, e.sql_state), (1130, None));
        assert_eq!(parse_err(b"\xff\x15"), Err(Error::Truncated));
        let eof = [0xfe, 0x00, 0x00, 0x0a, 0x00];
        assert!(is_eof(&eof, 5));
        assert_eq!(eof_status(&eof), status::MORE_RESULTS | 2);
        assert!(!is_eof(&[0xfe, 0, 0, 2, 0, 0, 0], 7));
    }
}
