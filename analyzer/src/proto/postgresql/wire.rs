//! PostgreSQL frontend/backend protocol v3: message framing limits and the decoding of the
//! message bodies the analyzer looks into.
//!
//! A typed message is a type byte, a big-endian `u32` length that counts itself but not the
//! type byte, and a body. The first messages a client sends (StartupMessage, SSLRequest,
//! GSSENCRequest, CancelRequest) have no type byte. Everything here works on byte slices
//! already cut to one message (or to the prefix of it the parser kept) and never panics:
//! decoders return `None` / an [`Error`] when a body does not hold what its type promises.

use crate::read::be_u32;
use std::borrow::Cow;

/// SSLRequest's request code (1234.5679).
pub const SSL_REQUEST: u32 = 80_877_103;
/// GSSENCRequest's request code (1234.5680).
pub const GSSENC_REQUEST: u32 = 80_877_104;
/// CancelRequest's request code (1234.5678).
pub const CANCEL_REQUEST: u32 = 80_877_102;
/// Protocol version 3.0 as sent in a StartupMessage.
pub const PROTOCOL_3_0: u32 = 0x0003_0000;
/// The server refuses startup packets longer than this (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LEN: u32 = 10_000;
/// The server's limit for frontend messages other than the large kinds
/// (`PQ_SMALL_MESSAGE_LIMIT`).
pub const MAX_SMALL_FRONTEND: u32 = 10_000;
/// libpq treats backend messages longer than this as a loss of sync unless they are of a
/// kind that may be long (`VALID_LONG_MESSAGE_TYPE`).
pub const MAX_SMALL_BACKEND: u32 = 30_000;
/// Authentication messages (`p`) may carry tokens up to 65,535 bytes (`PG_MAX_AUTH_TOKEN_LENGTH`).
pub const MAX_AUTH_FRONTEND: u32 = 65_535 + 4;
/// Any message: the server's `PQ_LARGE_MESSAGE_LIMIT` (1 GiB - 1).
pub const MAX_LARGE: u32 = 0x3fff_ffff;

/// Why a message was not understood. Each maps to a weird name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A length field below the minimum or above the kind's limit.
    BadLength,
    /// A type byte that no PostgreSQL message has.
    BadType,
    /// The body ended before its fields did (or a string lacked its NUL).
    Truncated,
    /// An untyped first message with an unknown request code or protocol version.
    BadStartup,
}

impl Error {
    /// The weird name.
    pub fn weird(self) -> &'static str {
        match self {
            Error::BadLength => "postgresql_bad_length",
            Error::BadType => "postgresql_bad_message_type",
            Error::Truncated => "postgresql_truncated_message",
            Error::BadStartup => "postgresql_bad_startup",
        }
    }
}

/// Which end sent a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client.
    Frontend,
    /// The server.
    Backend,
}

/// Type bytes a frontend sends.
const FRONTEND_TYPES: &[u8] = b"BCcDdEFfHPpQSX";
/// Type bytes a backend sends.
const BACKEND_TYPES: &[u8] = b"123ACDdEGHIKNnRSsTtVvWZc";

/// Whether `t` is a message type `side` sends.
pub fn known_type(side: Side, t: u8) -> bool {
    match side {
        Side::Frontend => FRONTEND_TYPES.contains(&t),
        Side::Backend => BACKEND_TYPES.contains(&t),
    }
}

/// Checks a typed message's header: the length counts itself, so it is at least 4, and each
/// kind has a ceiling (the limits PostgreSQL itself applies). An unknown type byte that is an
/// ASCII letter or digit is accepted (it may be a newer message kind; the caller skips it),
/// anything else is [`Error::BadType`].
pub fn check_header(side: Side, t: u8, len: u32) -> Result<(), Error> {
    if !t.is_ascii_alphanumeric() {
        return Err(Error::BadType);
    }
    let max = match (side, t) {
        (Side::Frontend, b'Q' | b'P' | b'B' | b'F' | b'd') => MAX_LARGE,
        (Side::Frontend, b'p') => MAX_AUTH_FRONTEND,
        (Side::Frontend, _) => MAX_SMALL_FRONTEND,
        (Side::Backend, b'T' | b'D' | b'd' | b'V' | b'E' | b'N' | b'A') => MAX_LARGE,
        (Side::Backend, _) => MAX_SMALL_BACKEND,
    };
    if len < 4 || len > max {
        return Err(Error::BadLength);
    }
    // Messages with a fixed length.
    let fixed = match (side, t) {
        (Side::Frontend, b'S' | b'H' | b'X' | b'c') => Some(4),
        (Side::Backend, b'Z') => Some(5),
        (Side::Backend, b'K') => Some(12),
        (Side::Backend, b'1' | b'2' | b'3' | b'I' | b'n' | b's' | b'c') => Some(4),
        _ => None,
    };
    match fixed {
        Some(n) if len != n => Err(Error::BadLength),
        _ => Ok(()),
    }
}

/// Name of a frontend message kind, as the JSON `messages` list shows it.
pub fn frontend_name(t: u8) -> &'static str {
    match t {
        b'B' => "bind",
        b'C' => "close",
        b'c' => "copy_done",
        b'D' => "describe",
        b'd' => "copy_data",
        b'E' => "execute",
        b'F' => "function_call",
        b'f' => "copy_fail",
        b'H' => "flush",
        b'P' => "parse",
        b'p' => "auth_response",
        b'Q' => "simple_query",
        b'S' => "sync",
        b'X' => "terminate",
        _ => "unknown",
    }
}

/// A NUL-terminated string at `*pos`, advancing past its NUL.
pub fn cstr<'a>(b: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = b.get(*pos..)?;
    let n = rest.iter().position(|&c| c == 0)?;
    *pos += n + 1;
    Some(&rest[..n])
}

/// A string at `*pos` ended by NUL or, when the body was cut, by the end of the bytes kept
/// (`cut` says which, so the caller can tell a truncated SQL text from a whole one).
pub fn cstr_or_rest<'a>(b: &'a [u8], pos: &mut usize) -> (&'a [u8], bool) {
    let rest = b.get(*pos..).unwrap_or_default();
    match rest.iter().position(|&c| c == 0) {
        Some(n) => {
            *pos += n + 1;
            (&rest[..n], false)
        }
        None => {
            *pos += rest.len();
            (rest, true)
        }
    }
}

/// An untyped first message, decoded from its body (the bytes after the length).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untyped {
    /// SSLRequest.
    SslRequest,
    /// GSSENCRequest.
    GssEncRequest,
    /// CancelRequest for a backend process.
    Cancel {
        /// The process whose query is to be cancelled.
        pid: u32,
    },
    /// StartupMessage.
    Startup {
        /// Protocol major version (3).
        major: u16,
        /// Protocol minor version.
        minor: u16,
        /// Parameters in the order sent.
        params: Vec<(Vec<u8>, Vec<u8>)>,
        /// The parameter list did not end properly.
        malformed: bool,
    },
}

/// Decodes an untyped message body (`len` from the length field, `body` the bytes after it,
/// possibly fewer than `len - 4` when the parser kept only a prefix).
pub fn parse_untyped(len: u32, body: &[u8]) -> Result<Untyped, Error> {
    let code = be_u32(body, 0).ok_or(Error::Truncated)?;
    match code {
        SSL_REQUEST if len == 8 => Ok(Untyped::SslRequest),
        GSSENC_REQUEST if len == 8 => Ok(Untyped::GssEncRequest),
        CANCEL_REQUEST if len == 16 => Ok(Untyped::Cancel {
            pid: be_u32(body, 4).ok_or(Error::Truncated)?,
        }),
        SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST => Err(Error::BadLength),
        _ if code >> 16 == 3 => {
            let mut params = Vec::new();
            let mut pos = 4;
            let mut malformed = false;
            loop {
                match body.get(pos) {
                    // The list ends with an empty name.
                    Some(0) => break,
                    None => {
                        malformed = true;
                        break;
                    }
                    Some(_) => {}
                }
                let (Some(name), Some(value)) = (cstr(body, &mut pos), cstr(body, &mut pos)) else {
                    malformed = true;
                    break;
                };
                params.push((name.to_vec(), value.to_vec()));
            }
            Ok(Untyped::Startup {
                major: (code >> 16) as u16,
                minor: (code & 0xffff) as u16,
                params,
                malformed,
            })
        }
        _ => Err(Error::BadStartup),
    }
}

/// Whether 8 bytes (length and code) look like the start of an untyped first message.
pub fn looks_untyped(b: &[u8]) -> Option<bool> {
    let (len, code) = (be_u32(b, 0)?, be_u32(b, 4)?);
    Some(match code {
        SSL_REQUEST | GSSENC_REQUEST => len == 8,
        CANCEL_REQUEST => len == 16,
        // Version 3.x with at least the terminating NUL.
        _ => code >> 16 == 3 && (code & 0xffff) < 16 && (9..=MAX_STARTUP_LEN).contains(&len),
    })
}

/// Zeek's name for an ErrorResponse/NoticeResponse field code.
pub fn field_name(code: u8) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        b'S' => "SeverityLocalized",
        b'V' => "Severity",
        b'C' => "Code",
        b'M' => "Message",
        b'D' => "Detail",
        b'H' => "Hint",
        b'P' => "Position",
        b'p' => "InternalPosition",
        b'q' => "InternalQuery",
        b'W' => "Where",
        b's' => "Schema",
        b't' => "Table",
        b'c' => "Column",
        b'd' => "Data",
        b'n' => "Constraint",
        b'F' => "File",
        b'L' => "Line",
        b'R' => "Routine",
        c => return Cow::Owned(format!("UnknownErrorId{}", c as char)),
    })
}

/// The fields of an ErrorResponse or NoticeResponse body, in order. The second value is false
/// when the body did not end with the terminating NUL (cut short, or not such a message).
pub fn parse_fields(body: &[u8]) -> (Vec<(u8, &[u8])>, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        match body.get(pos) {
            Some(0) => return (out, pos + 1 == body.len()),
            None => return (out, false),
            Some(&code) => {
                pos += 1;
                match cstr(body, &mut pos) {
                    Some(v) => out.push((code, v)),
                    None => return (out, false),
                }
            }
        }
    }
}

/// Zeek's name of an authentication request code.
pub fn auth_name(id: u32) -> Cow<'static, str> {
    Cow::Borrowed(match id {
        0 => "Ok",
        2 => "KerberosV5",
        3 => "CleartextPassword",
        5 => "MD5Password",
        7 => "GSSAPI",
        8 => "GSSAPIContinue",
        9 => "SSPI",
        10 => "SASL",
        11 => "SASLContinue",
        12 => "SASLFinal",
        n => return Cow::Owned(format!("UnknownAuthId{n}")),
    })
}

/// The SASL mechanisms an AuthenticationSASL body (after the code) offers.
pub fn sasl_mechanisms(b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(m) = cstr(b, &mut pos) {
        if m.is_empty() {
            break;
        }
        out.push(m.to_vec());
    }
    out
}

/// Rows a CommandComplete tag reports (`SELECT 5`, `INSERT 0 1`, `UPDATE 3`, `COPY 10`, ...);
/// `None` for tags without a count (`CREATE TABLE`, `BEGIN`).
pub fn tag_rows(tag: &[u8]) -> Option<u64> {
    let mut words = tag.split(|&c| c == b' ');
    let verb = words.next()?;
    if !matches!(
        verb,
        b"SELECT" | b"INSERT" | b"UPDATE" | b"DELETE" | b"MERGE" | b"FETCH" | b"MOVE" | b"COPY"
    ) {
        return None;
    }
    let last = tag.rsplit(|&c| c == b' ').next()?;
    if last.is_empty() || last.len() > 20 || !last.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(last).ok()?.parse().ok()
}

/// The first keyword of an SQL text, upper-cased (`select 1` → `SELECT`), skipping
/// whitespace, comments and opening parentheses. At most 32 characters.
pub fn sql_verb(sql: &[u8]) -> Option<String> {
    let mut s = sql;
    loop {
        let t = s
            .iter()
            .take_while(|c| c.is_ascii_whitespace() || **c == b'(')
            .count();
        s = &s[t..];
        if let Some(r) = s.strip_prefix(b"--") {
            let n = r
                .iter()
                .position(|&c| c == b'\n')
                .map_or(r.len(), |n| n + 1);
            s = &r[n..];
        } else if let Some(r) = s.strip_prefix(b"/*") {
            let n = r
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(r.len(), |n| n + 2);
            s = &r[n..];
        } else {
            break;
        }
    }
    let w: Vec<u8> = s
        .iter()
        .take_while(|c| c.is_ascii_alphabetic() || **c == b'_')
        .take(32)
        .map(u8::to_ascii_uppercase)
        .collect();
    (!w.is_empty()).then(|| String::from_utf8_lossy(&w).into_owned())
}

/// A Parse message: statement name and SQL text (`sql_cut` when the kept bytes ended inside
/// the text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parse<'a> {
    /// Prepared statement name (empty: the unnamed statement).
    pub statement: &'a [u8],
    /// SQL text.
    pub sql: &'a [u8],
    /// The text continues past the bytes kept.
    pub sql_cut: bool,
}

/// Decodes a Parse body (or the prefix of it that was kept).
pub fn parse_parse(b: &[u8]) -> Option<Parse<'_>> {
    let mut pos = 0;
    let statement = cstr(b, &mut pos)?;
    let (sql, sql_cut) = cstr_or_rest(b, &mut pos);
    Some(Parse {
        statement,
        sql,
        sql_cut,
    })
}

/// Decodes the start of a Bind body: destination portal and source statement names.
pub fn parse_bind(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut pos = 0;
    let portal = cstr(b, &mut pos)?;
    let statement = cstr(b, &mut pos)?;
    Some((portal, statement))
}

/// Decodes a Describe or Close body: `S` (statement) or `P` (portal), and the name.
pub fn parse_target(b: &[u8]) -> Option<(u8, &[u8])> {
    let (&kind, rest) = b.split_first()?;
    if kind != b'S' && kind != b'P' {
        return None;
    }
    let mut pos = 0;
    let name = cstr(rest, &mut pos)?;
    (pos == rest.len()).then_some((kind, name))
}

/// Decodes an Execute body: portal name and maximum rows (0: all).
pub fn parse_execute(b: &[u8]) -> Option<(&[u8], u32)> {
    let mut pos = 0;
    let portal = cstr(b, &mut pos)?;
    let max = be_u32(b, pos)?;
    (pos + 4 == b.len()).then_some((portal, max))
}

/// Decodes a ParameterStatus body: name and value.
pub fn parse_parameter_status(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut pos = 0;
    let name = cstr(b, &mut pos)?;
    let value = cstr(b, &mut pos)?;
    (pos == b.len()).then_some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        use Side::*;
        let cases: &[(Side, u8, u32, Result<(), Error>)] = &[
            (Frontend, b'Q', 5, Ok(())),
            (Frontend, b'Q', 3, Err(Error::BadLength)),
            (Frontend, b'Q', MAX_LARGE, Ok(())),
            (Frontend, b'Q', MAX_LARGE + 1, Err(Error::BadLength)),
            (Frontend, b'S', 4, Ok(())),
            (Frontend, b'S', 5, Err(Error::BadLength)),
            (Frontend, b'X', 4, Ok(())),
            (Frontend, b'E', 20_000, Err(Error::BadLength)),
            (Frontend, b'p', 60_000, Ok(())),
            (Frontend, 0x16, 10, Err(Error::BadType)),
            (Frontend, b'z', 10, Ok(())),
            (Backend, b'Z', 5, Ok(())),
            (Backend, b'Z', 6, Err(Error::BadLength)),
            (Backend, b'K', 12, Ok(())),
            (Backend, b'D', 1_000_000, Ok(())),
            (Backend, b'C', 1_000_000, Err(Error::BadLength)),
            (Backend, b'1', 4, Ok(())),
            (Backend, 0, 4, Err(Error::BadType)),
            (Backend, b'E', u32::MAX, Err(Error::BadLength)),
        ];
        for &(side, t, len, want) in cases {
            assert_eq!(
                check_header(side, t, len),
                want,
                "{side:?} {} {len}",
                t as char
            );
        }
        assert!(known_type(Frontend, b'Q') && !known_type(Frontend, b'Z'));
        assert!(known_type(Backend, b'Z') && !known_type(Backend, b'Q'));
    }

    #[test]
    fn untyped_messages() {
        assert_eq!(
            parse_untyped(8, &[0x04, 0xd2, 0x16, 0x2f]),
            Ok(Untyped::SslRequest)
        );
        assert_eq!(
            parse_untyped(8, &[0x04, 0xd2, 0x16, 0x30]),
            Ok(Untyped::GssEncRequest)
        );
        assert_eq!(
            parse_untyped(16, &[0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x30, 0x39, 1, 2, 3, 4]),
            Ok(Untyped::Cancel { pid: 12345 })
        );
        assert_eq!(
            parse_untyped(12, &[0x04, 0xd2, 0x16, 0x2f, 0, 0, 0, 0]),
            Err(Error::BadLength)
        );
        let body = b"\x00\x03\x00\x00user\x00alice\x00database\x00db1\x00\x00";
        assert_eq!(
            parse_untyped(4 + body.len() as u32, body),
            Ok(Untyped::Startup {
                major: 3,
                minor: 0,
                params: vec![
                    (b"user".to_vec(), b"alice".to_vec()),
                    (b"database".to_vec(), b"db1".to_vec())
                ],
                malformed: false
            })
        );
        // Cut before the list's end.
        let Ok(Untyped::Startup {
            malformed, params, ..
        }) = parse_untyped(40, b"\x00\x03\x00\x00user\x00ali")
        else {
            panic!()
        };
        assert!(malformed && params.is_empty());
        assert_eq!(
            parse_untyped(8, &[0, 2, 0, 0]),
            Err(Error::BadStartup),
            "protocol 2 is not v3"
        );
        assert_eq!(parse_untyped(8, &[0, 3]), Err(Error::Truncated));
        assert_eq!(
            looks_untyped(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]),
            Some(true)
        );
        assert_eq!(looks_untyped(&[0, 0, 0, 80, 0, 3, 0, 0]), Some(true));
        assert_eq!(looks_untyped(&[0, 0, 0x27, 0x11, 0, 3, 0, 0]), Some(false));
        assert_eq!(looks_untyped(&[0, 0, 0, 80, 0, 2, 0, 0]), Some(false));
        assert_eq!(looks_untyped(&[0, 0, 0]), None);
    }

    #[test]
    fn error_fields() {
        let body = b"SERROR\x00VERROR\x00C42P01\x00Mtable \"t\" does not exist\x00\x00";
        let (f, ok) = parse_fields(body);
        assert!(ok);
        assert_eq!(f.len(), 4);
        assert_eq!(f[2], (b'C', &b"42P01"[..]));
        let (f, ok) = parse_fields(&body[..20]);
        assert!(!ok);
        assert_eq!(f.len(), 2);
        let (_, ok) = parse_fields(b"SERROR\x00\x00junk");
        assert!(!ok, "bytes after the terminator");
        assert_eq!(field_name(b'M'), "Message");
        assert_eq!(field_name(b'Z'), "UnknownErrorIdZ");
        assert_eq!(auth_name(10), "SASL");
        assert_eq!(auth_name(99), "UnknownAuthId99");
        assert_eq!(
            sasl_mechanisms(b"SCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"),
            vec![b"SCRAM-SHA-256-PLUS".to_vec(), b"SCRAM-SHA-256".to_vec()]
        );
    }

    #[test]
    fn command_tags() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"SELECT 5", Some(5)),
            (b"INSERT 0 1", Some(1)),
            (b"UPDATE 3", Some(3)),
            (b"DELETE 0", Some(0)),
            (b"COPY 100000", Some(100_000)),
            (b"MERGE 2", Some(2)),
            (b"CREATE TABLE", None),
            (b"BEGIN", None),
            (b"SELECT", None),
            (b"SELECT x", None),
            (b"SELECT 99999999999999999999999", None),
            (b"", None),
        ];
        for &(tag, want) in cases {
            assert_eq!(tag_rows(tag), want, "{}", String::from_utf8_lossy(tag));
        }
    }

    #[test]
    fn verbs() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"select 1", Some("SELECT")),
            (b"  \n(SELECT 1)", Some("SELECT")),
            (b"-- hi\nINSERT INTO t", Some("INSERT")),
            (b"/* x */ update t", Some("UPDATE")),
            (b"/* unterminated", None),
            (b"", None),
            (b";", None),
        ];
        for &(sql, want) in cases {
            assert_eq!(sql_verb(sql).as_deref(), want);
        }
    }

    #[test]
    fn extended_bodies() {
        assert_eq!(
            parse_parse(b"P_1\x00SELECT $1\x00\x00\x01\x00\x00\x00\x17"),
            Some(Parse {
                statement: b"P_1",
                sql: b"SELECT $1",
                sql_cut: false
            })
        );
        assert_eq!(
            parse_parse(b"\x00SELECT lo"),
            Some(Parse {
                statement: b"",
                sql: b"SELECT lo",
                sql_cut: true
            })
        );
        assert_eq!(parse_parse(b"no-nul"), None);
        assert_eq!(
            parse_bind(b"portal\x00P_1\x00\x00\x00"),
            Some((&b"portal"[..], &b"P_1"[..]))
        );
        assert_eq!(parse_bind(b"portal\x00P_"), None);
        assert_eq!(parse_target(b"SP_1\x00"), Some((b'S', &b"P_1"[..])));
        assert_eq!(parse_target(b"P\x00"), Some((b'P', &b""[..])));
        assert_eq!(parse_target(b"X\x00"), None);
        assert_eq!(parse_target(b"S\x00junk"), None);
        assert_eq!(parse_execute(b"\x00\x00\x00\x00\x00"), Some((&b""[..], 0)));
        assert_eq!(
            parse_execute(b"c1\x00\x00\x00\x00\x0a"),
            Some((&b"c1"[..], 10))
        );
        assert_eq!(parse_execute(b"c1\x00\x00\x00"), None);
        assert_eq!(
            parse_parameter_status(b"server_version\x0015.8\x00"),
            Some((&b"server_version"[..], &b"15.8"[..]))
        );
        assert_eq!(parse_parameter_status(b"a\x00b"), None);
    }
}
