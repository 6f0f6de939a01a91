//! HTTP/1 on the wire: request and status lines, header lines and the values the parser
//! interprets, as pure functions over one line (or one header value) with Zeek's rules. No
//! state lives here: the per-direction state machine ([`super::Http`]) cuts the stream into
//! lines and decides what each one is.
//!
//! Nothing here panics or allocates more than the line it is given: a line that does not
//! parse is `None` (or `Err`), and the caller decides whether that is a violation.

/// Methods of Zeek's DPD client signature (`base/protocols/http/dpd.sig`), in its order: a
/// client stream that starts with one of them (after optional whitespace, no separator
/// needed) is HTTP on any port. Any token is a method once HTTP is established.
pub(super) const METHODS: &[&[u8]] = &[
    b"OPTIONS",
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"QUERY",
    b"ACL",
    b"BASELINE-CONTROL",
    b"BIND",
    b"CHECKIN",
    b"CHECKOUT",
    b"CONNECT",
    b"COPY",
    b"LABEL",
    b"LINK",
    b"LOCK",
    b"MERGE",
    b"MKACTIVITY",
    b"MKCALENDAR",
    b"MKCOL",
    b"MKREDIRECTREF",
    b"MOVE",
    b"ORDERPATCH",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"REBIND",
    b"REPORT",
    b"SEARCH",
    b"TRACE",
    b"UNBIND",
    b"UNCHECKOUT",
    b"UNLINK",
    b"UNLOCK",
    b"UPDATE",
    b"VERSION-CONTROL",
    b"BCOPY",
    b"BDELETE",
    b"BMOVE",
    b"BPROPFIND",
    b"BPROPPATCH",
    b"NOTIFY",
    b"POLL",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"X-MS-ENUMATTS",
    b"MKWORKSPACE",
    b"RPC_IN_DATA",
    b"RPC_OUT_DATA",
];

/// A `token` byte (RFC 9110 §5.6.2).
fn is_token(c: u8) -> bool {
    (33..=126).contains(&c) && !b"()<>@,;:\\\"/[]?={}".contains(&c)
}

/// Space or tab.
pub(super) fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// A byte Zeek takes as part of a request target.
fn is_uri_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b":/?#[]@!$&'()*+,;=-_.~%".contains(&c)
}

/// A parsed `HTTP/x.y`: single digits, anything else is 0.0 (as Zeek).
fn parse_version(v: &[u8]) -> (u8, u8) {
    match v {
        [a, b'.', b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => (a - b'0', b - b'0'),
        _ => (0, 0),
    }
}

/// The version part of a request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReqVersion {
    /// No `HTTP/` on the line: HTTP/0.9.
    Missing,
    /// `HTTP/` with fewer than three bytes after it: the connection's request version stays
    /// what it was (Zeek's `bad_HTTP_version`).
    Short,
    /// `HTTP/x.y` (0.0 when not digit, dot, digit).
    Parsed((u8, u8)),
}

/// A request line.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RequestLine<'a> {
    /// The method token.
    pub(super) method: &'a [u8],
    /// The target, as sent (empty when there is none).
    pub(super) uri: &'a [u8],
    /// What follows the target.
    pub(super) version: ReqVersion,
}

/// Whether `b` starts with `HTTP/` (any case).
fn starts_http(b: &[u8]) -> bool {
    b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"HTTP/")
}

/// Parses a request line with Zeek's rules (`HTTP_RequestLine`, `ParseRequest`): the method
/// token, whitespace, then the target up to where `HTTP/` is found — tried at the first byte
/// that is not a URI byte and at every later position, each time after skipping whitespace,
/// the target ending before that whitespace. Whether an HTTP/0.9 line (no version) is
/// acceptable depends on the connection's request version, so it is the caller's to decide.
/// `Err` is the weird of a line that is not a request line.
pub(super) fn parse_request_line(line: &[u8]) -> Result<RequestLine<'_>, &'static str> {
    let mlen = line.iter().take_while(|&&c| is_token(c)).count();
    if mlen == 0 {
        let n = line.len();
        if n >= 9 && line[n - 9..n - 3].eq_ignore_ascii_case(b" HTTP/") {
            return Err("bad_HTTP_request_with_version");
        }
        return Err("bad_HTTP_request");
    }
    let method = &line[..mlen];
    let mut p = mlen;
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    if p == mlen {
        return Err("bad_HTTP_request");
    }
    let rest = &line[p..];
    let n = rest.len();
    let mut end_of_uri = rest.iter().take_while(|&&c| is_uri_char(c)).count();
    if end_of_uri >= n && starts_http(rest) {
        end_of_uri = 0;
    }
    let mut vs = end_of_uri;
    let mut found = false;
    while vs < n {
        end_of_uri = vs;
        while vs < n && is_ws(rest[vs]) {
            vs += 1;
        }
        if starts_http(&rest[vs..]) {
            found = true;
            break;
        }
        vs += 1;
    }
    let version = if !found {
        ReqVersion::Missing
    } else if vs + 8 <= n {
        ReqVersion::Parsed(parse_version(&rest[vs + 5..]))
    } else {
        ReqVersion::Short
    };
    Ok(RequestLine {
        method,
        uri: &rest[..end_of_uri],
        version,
    })
}

/// A status line.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct StatusLine<'a> {
    /// `HTTP/x.y` (0.0 when not digits).
    pub(super) version: (u8, u8),
    /// The three bytes after the version, as a number; 0 when they are not all digits.
    pub(super) code: u16,
    /// The reason phrase; `None` when the line ends after the code, empty when only
    /// whitespace follows it.
    pub(super) reason: Option<&'a [u8]>,
}

/// Parses a status line with Zeek's rules; `None` when it does not start with `HTTP/` or is
/// too short to hold a code.
pub(super) fn parse_status_line(line: &[u8]) -> Option<StatusLine<'_>> {
    if line.len() < 5 || !line[..5].eq_ignore_ascii_case(b"HTTP/") {
        return None;
    }
    let version = parse_version(&line[5..]);
    let mut p = 5;
    while p < line.len() && !is_ws(line[p]) {
        p += 1;
    }
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    if line.len() - p < 3 {
        return None;
    }
    let c = &line[p..p + 3];
    let code = if c.iter().all(u8::is_ascii_digit) {
        c.iter().fold(0u16, |a, d| a * 10 + u16::from(d - b'0'))
    } else {
        0
    };
    p += 3;
    while p < line.len() && !is_ws(line[p]) {
        p += 1;
    }
    if p >= line.len() {
        return Some(StatusLine {
            version,
            code,
            reason: None,
        });
    }
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    Some(StatusLine {
        version,
        code,
        reason: Some(&line[p..]),
    })
}

/// The length of a comment `(...)` at the start of `b` (nested, `\` escapes the next byte);
/// an unclosed one runs to the end (Zeek's `MIME_skip_comments`).
fn skip_comment(b: &[u8]) -> usize {
    if b.first() != Some(&b'(') {
        return 0;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// Whitespace and comments at the start of `b` (Zeek's `MIME_skip_lws_comments`).
fn skip_lws_comments(b: &[u8]) -> usize {
    let mut i = 0;
    while i < b.len() {
        if is_ws(b[i]) {
            i += 1;
        } else if b[i] == b'(' {
            i += skip_comment(&b[i..]);
        } else {
            return i;
        }
    }
    b.len()
}

/// A MIME token byte; in a boundary only `"` is special (Zeek's `MIME_is_token_char`).
fn is_mime_token(c: u8, boundary: bool) -> bool {
    MIME_TOKEN[usize::from(c)] & if boundary { 2 } else { 1 } != 0
}

/// Per byte: bit 0 a token byte, bit 1 a boundary token byte (one lookup per byte: header
/// values are scanned for tokens on every message).
const MIME_TOKEN: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 33;
    while c <= 126 {
        let mut bits = 0b11;
        if c == b'"' as usize {
            bits = 0;
        } else {
            let special = b"()<>@,;:\\\"/[]?=";
            let mut k = 0;
            while k < special.len() {
                if special[k] as usize == c {
                    bits = 0b10;
                }
                k += 1;
            }
        }
        t[c] = bits;
        c += 1;
    }
    t
};

/// The first MIME token of `b` as a range: whitespace, comments and any other bytes before
/// it are skipped (Zeek's `MIME_get_token`; a boundary does not skip leading whitespace
/// first, but steps over it all the same).
fn mime_token(b: &[u8], boundary: bool) -> Option<(usize, usize)> {
    let mut i = if boundary { 0 } else { skip_lws_comments(b) };
    while i < b.len() {
        if is_mime_token(b[i], boundary) {
            let j = i + b[i..]
                .iter()
                .take_while(|&&c| is_mime_token(c, boundary))
                .count();
            return Some((i, j));
        }
        i += skip_lws_comments(&b[i..]).max(1);
    }
    None
}

/// A header value's first token (Zeek's `get_value_token`), empty when it has none.
pub(super) fn value_token(v: &[u8]) -> &[u8] {
    mime_token(v, false).map_or(&[][..], |(a, b)| &v[a..b])
}

/// What follows a header value's first token.
pub(super) fn after_token(v: &[u8]) -> &[u8] {
    mime_token(v, false).map_or(&[][..], |(_, b)| &v[b..])
}

/// `std::from_chars` for a decimal or hexadecimal `i64`: an optional `-`, then at least one
/// digit, as many as there are; `None` when there is none or it overflows.
pub(super) fn from_chars(b: &[u8], base: u32) -> Option<i64> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let n = digits
        .iter()
        .take_while(|c| (**c as char).is_digit(base))
        .count();
    if n == 0 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in &digits[..n] {
        let d = i64::from((d as char).to_digit(base).unwrap_or(0));
        v = v.checked_mul(i64::from(base))?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// A Content-Length value as Zeek reads it: its first MIME token, decimal, fitting in an
/// i64 and not negative. `None`: no token at all (the header is ignored); `Some(Err(()))`: not
/// a length (Zeek then takes 0).
pub(super) fn parse_content_length(v: &[u8]) -> Option<Result<u64, ()>> {
    let t = value_token(v);
    if t.is_empty() {
        return None;
    }
    Some(match from_chars(t, 10) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(()),
    })
}

/// Chunk size: the line as a hexadecimal i64 (Zeek's `atoi_n`, i.e. `from_chars`); `None`
/// when that fails (a weird, then the last chunk). Zero or negative: the last chunk.
pub(super) fn parse_chunk_size(line: &[u8]) -> Option<i64> {
    from_chars(line, 16)
}

/// A 206's `Content-Range: bytes first-last/len` → last-first+1, as Zeek reads it: the first
/// token must be `bytes`; in the rest, spaces are dropped and both positions must parse.
pub(super) fn content_range_len(v: &[u8]) -> Option<u64> {
    if value_token(v) != b"bytes" {
        return None;
    }
    let rest: Vec<u8> = after_token(v)
        .iter()
        .copied()
        .filter(|&c| c != b' ')
        .collect();
    let slash = rest.iter().position(|&c| c == b'/')?;
    let spec = &rest[..slash];
    let dash = spec.iter().position(|&c| c == b'-')?;
    let (f, l) = (
        from_chars(&spec[..dash], 10)?,
        from_chars(&spec[dash + 1..], 10)?,
    );
    if f < 0 || l < f {
        return None;
    }
    let len = (l - f).checked_add(1)?;
    (len > 0).then_some(len as u64)
}

/// What a Content-Type says about a body's structure (Zeek's `ParseContentTypeField`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ContentType {
    /// `multipart/*`.
    pub(super) multipart: bool,
    /// `message/*`.
    pub(super) message: bool,
    /// The `boundary` parameter, if a multipart type has one.
    pub(super) boundary: Option<Vec<u8>>,
}

/// Parses a Content-Type value: `type/subtype` (MIME tokens), then, for multipart and
/// message types, `; attribute=value` parameters, where a multipart type's `boundary` value
/// is a quoted string or a run of bytes 33–126 other than `"`. `None` when there is no
/// `type/subtype` (the entity keeps its type).
pub(super) fn parse_content_type(v: &[u8]) -> Option<ContentType> {
    let (a, b) = mime_token(v, false)?;
    let ty = &v[a..b];
    let mut p = b;
    p += skip_lws_comments(&v[p..]);
    if v.get(p) != Some(&b'/') {
        return None;
    }
    p += 1;
    let (_, e) = mime_token(&v[p..], false)?;
    p += e;
    let multipart = ty.eq_ignore_ascii_case(b"multipart");
    let message = ty.eq_ignore_ascii_case(b"message");
    let mut boundary = None;
    if multipart || message {
        loop {
            p += skip_lws_comments(&v[p..]);
            if v.get(p) != Some(&b';') {
                break;
            }
            p += 1;
            let Some((a, e)) = mime_token(&v[p..], false) else {
                break;
            };
            let attr = &v[p + a..p + e];
            p += e;
            p += skip_lws_comments(&v[p..]);
            if v.get(p) != Some(&b'=') {
                continue;
            }
            p += 1;
            let is_boundary = multipart && attr.eq_ignore_ascii_case(b"boundary");
            let rest = &v[p..];
            let lead = if is_boundary {
                0
            } else {
                skip_lws_comments(rest)
            };
            if rest.get(lead) == Some(&b'"') {
                // A quoted string: up to the closing quote, `\` escaping the next byte.
                let q = &rest[lead..];
                let mut i = 1;
                let mut val = Vec::new();
                let mut closed = false;
                while i < q.len() {
                    match q[i] {
                        b'"' => {
                            closed = true;
                            break;
                        }
                        b'\\' if i + 1 < q.len() => {
                            val.push(q[i + 1]);
                            i += 1;
                        }
                        c => val.push(c),
                    }
                    i += 1;
                }
                if !closed {
                    continue;
                }
                p += lead + i + 1;
                if is_boundary {
                    boundary = Some(val);
                }
            } else {
                let Some((s, e)) = mime_token(rest, is_boundary) else {
                    continue;
                };
                if is_boundary {
                    boundary = Some(rest[s..e].to_vec());
                }
                p += e;
            }
        }
    }
    Some(ContentType {
        multipart,
        message,
        boundary,
    })
}

/// Whether a comma-separated header value lists `token`.
pub(super) fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&c| c == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The header names whose lines are acted on (Zeek's `HTTP_Entity::SubmitHeader`,
/// `HTTP_Analyzer::HTTP_Header` and the `http_header` script handler), told apart from each
/// other and from the rest without case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Name {
    ContentType,
    ContentLength,
    ContentRange,
    TransferEncoding,
    ContentEncoding,
    Upgrade,
    Http2Settings,
    Connection,
    Host,
    UserAgent,
    Referer,
    Origin,
    /// Any other name.
    Other,
}

/// Which of [`Name`]'s names `name` is, in any case (ASCII case only: other bytes match
/// themselves). Found by length first, then compared in place: most of a message's names are
/// none of these and cost a length test (was: every name upper-cased into a buffer, then
/// compared with each).
pub(super) fn header_name(name: &[u8]) -> Name {
    use Name::*;
    let candidates: &[(&[u8], Name)] = match name.len() {
        4 => &[(b"HOST", Host)],
        6 => &[(b"ORIGIN", Origin)],
        7 => &[(b"UPGRADE", Upgrade), (b"REFERER", Referer)],
        10 => &[(b"CONNECTION", Connection), (b"USER-AGENT", UserAgent)],
        12 => &[(b"CONTENT-TYPE", ContentType)],
        13 => &[(b"CONTENT-RANGE", ContentRange)],
        14 => &[
            (b"CONTENT-LENGTH", ContentLength),
            (b"HTTP2-SETTINGS", Http2Settings),
        ],
        16 => &[(b"CONTENT-ENCODING", ContentEncoding)],
        17 => &[(b"TRANSFER-ENCODING", TransferEncoding)],
        _ => &[],
    };
    candidates
        .iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n))
        .map_or(Other, |&(_, k)| k)
}

/// Splits a complete header line (continuations joined) into name and value, as Zeek does
/// (`MIME_Header`): the name is the first run of bytes 33–126 other than `:` (whitespace,
/// comments and other bytes before it skipped); after it, whitespace and comments, then `:`;
/// the value is what follows without its leading whitespace. `None` when there is no name
/// or no colon.
pub(super) fn split_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let is_name = |c: u8| (33..=126).contains(&c) && c != b':';
    let mut i = skip_lws_comments(line);
    let (a, b) = loop {
        if i >= line.len() {
            return None;
        }
        if is_name(line[i]) {
            let j = i + line[i..].iter().take_while(|&&c| is_name(c)).count();
            break (i, j);
        }
        i += skip_lws_comments(&line[i..]).max(1);
    };
    let p = b + skip_lws_comments(&line[b..]);
    if line.get(p) != Some(&b':') {
        return None;
    }
    let v = &line[p + 1..];
    let ws = v
        .iter()
        .take_while(|&&c| matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .count();
    Some((&line[a..b], &v[ws..]))
}

/// Multipart boundary check of a body line (Zeek's `CheckBoundaryDelimiter`): `--` and the
/// boundary start it; `--` right after the boundary makes it the closing one, whatever
/// follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delimiter {
    /// Not a boundary line.
    No,
    /// A boundary: the next part begins.
    Boundary,
    /// The closing boundary.
    Closing,
}

/// Checks `line` against `boundary`.
pub(super) fn delimiter(line: &[u8], boundary: &[u8]) -> Delimiter {
    let Some(rest) = line.strip_prefix(b"--") else {
        return Delimiter::No;
    };
    match rest.strip_prefix(boundary) {
        None => Delimiter::No,
        Some(after) if after.starts_with(b"--") => Delimiter::Closing,
        Some(_) => Delimiter::Boundary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(line: &[u8]) -> (String, String, ReqVersion) {
        let r = parse_request_line(line).unwrap();
        (
            String::from_utf8_lossy(r.method).into_owned(),
            String::from_utf8_lossy(r.uri).into_owned(),
            r.version,
        )
    }

    /// The rule `header_name` replaced: upper-case the name, compare it whole.
    fn name_by_upper_case(name: &[u8]) -> Name {
        use Name::*;
        match name.to_ascii_uppercase().as_slice() {
            b"CONTENT-TYPE" => ContentType,
            b"CONTENT-LENGTH" => ContentLength,
            b"CONTENT-RANGE" => ContentRange,
            b"TRANSFER-ENCODING" => TransferEncoding,
            b"CONTENT-ENCODING" => ContentEncoding,
            b"UPGRADE" => Upgrade,
            b"HTTP2-SETTINGS" => Http2Settings,
            b"CONNECTION" => Connection,
            b"HOST" => Host,
            b"USER-AGENT" => UserAgent,
            b"REFERER" => Referer,
            b"ORIGIN" => Origin,
            _ => Other,
        }
    }

    #[test]
    fn header_names_are_told_apart_without_case() {
        let known: &[&[u8]] = &[
            b"Content-Type",
            b"content-length",
            b"CONTENT-RANGE",
            b"Transfer-Encoding",
            b"Content-Encoding",
            b"upgrade",
            b"HTTP2-Settings",
            b"Connection",
            b"host",
            b"User-Agent",
            b"Referer",
            b"Origin",
        ];
        let mut names: Vec<Vec<u8>> = vec![b"".to_vec(), b"Server".to_vec(), b"Date".to_vec()];
        for n in known {
            names.push(n.to_vec());
            // Each byte replaced by every value (case changes, near misses, non-ASCII), and
            // the name cut or grown by a byte.
            for at in 0..n.len() {
                for c in 0..=255u8 {
                    let mut m = n.to_vec();
                    m[at] = c;
                    names.push(m);
                }
            }
            names.push(n[..n.len() - 1].to_vec());
            names.push([n, &b"s"[..]].concat());
        }
        for n in &names {
            assert_eq!(
                header_name(n),
                name_by_upper_case(n),
                "{:?}",
                String::from_utf8_lossy(n)
            );
        }
        assert_eq!(header_name(b"cOnTeNt-LeNgTh"), Name::ContentLength);
        assert_eq!(header_name(b"Content-Lengt\xc8"), Name::Other);
    }

    #[test]
    fn request_line_variants() {
        use ReqVersion::{Missing, Parsed, Short};
        let v11 = Parsed((1, 1));
        for (line, uri, version) in [
            (&b"GET /a b HTTP/1.1"[..], "/a b", v11),
            (b"GET HTTP/1.1", "", v11),
            (b"GET http://h/p?q HTTP/1.0", "http://h/p?q", Parsed((1, 0))),
            (b"get / http/1.1", "/", v11),
            (b"GET /x/HTTP/1.1 HTTP/1.0", "/x/HTTP/1.1", Parsed((1, 0))),
            // `HTTP/` after the first non-URI byte needs no whitespace before it (H13).
            (b"GET /a b/HTTP/1.1", "/a b/", v11),
            (b"GET /a<HTTP/1.1", "/a<", v11),
            // A present but short or bad version is not HTTP/0.9 (H5).
            (b"GET /x HTTP/1", "/x", Short),
            (b"GET /x HTTP/", "/x", Short),
            (b"GET /x HTTP/a.b", "/x", Parsed((0, 0))),
            // No version: HTTP/0.9, the target as Zeek cuts it.
            (b"GET /ok", "/ok", Missing),
            (b"GET /a<b", "/a<", Missing),
            (b"GET /a b", "/a", Missing),
            (b"T /x", "/x", Missing),
            (b"GET ", "", Missing),
        ] {
            let (m, u, v) = req(line);
            assert!(!m.is_empty());
            assert_eq!(
                (u.as_str(), v),
                (uri, version),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(parse_request_line(b"GET"), Err("bad_HTTP_request"));
        assert_eq!(parse_request_line(b"/ x"), Err("bad_HTTP_request"));
        assert_eq!(
            parse_request_line(b"/ HTTP/1.1"),
            Err("bad_HTTP_request_with_version")
        );
        assert_eq!(
            parse_request_line(b" GET / HTTP/1.1"),
            Err("bad_HTTP_request_with_version")
        );
        assert_eq!(parse_request_line(b""), Err("bad_HTTP_request"));
    }

    #[test]
    fn status_line_variants() {
        let s = parse_status_line(b"HTTP/1.1 200 OK").unwrap();
        assert_eq!(
            (s.version, s.code, s.reason),
            ((1, 1), 200, Some(&b"OK"[..]))
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 204").unwrap().reason, None);
        assert_eq!(
            parse_status_line(b"HTTP/1.1 204 ").unwrap().reason,
            Some(&b""[..])
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK").unwrap().code, 200);
        assert_eq!(parse_status_line(b"HTTP/1.1 abc Weird").unwrap().code, 0);
        assert_eq!(
            parse_status_line(b"HTTP/1.0 404 Not  Found ")
                .unwrap()
                .reason,
            Some(&b"Not  Found "[..])
        );
        assert_eq!(parse_status_line(b"HTTP/x 200 OK").unwrap().version, (0, 0));
        assert_eq!(parse_status_line(b"HTTP/1.1 20"), None);
        assert_eq!(parse_status_line(b"SIP/2.0 200 OK"), None);
    }

    #[test]
    fn header_lines() {
        for (line, want) in [
            (&b"Host: h "[..], Some((&b"Host"[..], &b"h "[..]))),
            (b" Host : x", Some((b"Host", b"x"))),
            (b"Host (comment): x", Some((b"Host", b"x"))),
            (b"X-A:", Some((b"X-A", b""))),
            (b"X-A:\t v", Some((b"X-A", b"v"))),
            (b"no colon here", None),
            (b": v", None),
            (b"", None),
        ] {
            assert_eq!(
                split_header(line),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn content_length_values() {
        for (v, want) in [
            (&b"12"[..], Some(Ok(12))),
            (b"  12abc", Some(Ok(12))),
            (b"(comment) 7", Some(Ok(7))),
            // The first MIME token: other bytes before it are skipped.
            (b"\"12\"", Some(Ok(12))),
            (b"9223372036854775807", Some(Ok(i64::MAX as u64))),
            (b"9223372036854775808", Some(Err(()))),
            (b"-5", Some(Err(()))),
            (b"+5", Some(Err(()))),
            (b"abc", Some(Err(()))),
            (b"(unclosed 5", None),
            (b"", None),
            (b"   ", None),
        ] {
            assert_eq!(
                parse_content_length(v),
                want,
                "{}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn chunk_sizes() {
        for (line, want) in [
            (&b"1a;ext=1"[..], Some(26)),
            (b"0", Some(0)),
            (b"7fffffffffffffff", Some(i64::MAX)),
            (b"8000000000000000", None),
            (b"-1", Some(-1)),
            (b" 1", None),
            (b"", None),
        ] {
            assert_eq!(
                parse_chunk_size(line),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn header_values() {
        assert_eq!(content_range_len(b"bytes 0-4/10"), Some(5));
        assert_eq!(content_range_len(b" bytes  10 - 19 / *"), Some(10));
        assert_eq!(content_range_len(b"bytes 5-4/10"), None);
        assert_eq!(content_range_len(b"bytes */10"), None);
        assert_eq!(content_range_len(b"0-4/10"), None);
        assert_eq!(content_range_len(b"Bytes 0-4/10"), None);
        assert_eq!(value_token(b"  Chunked, gzip"), b"Chunked");
        assert_eq!(value_token(b"(c) keep-alive"), b"keep-alive");
        assert_eq!(after_token(b"chunked, gzip"), b", gzip");
        assert_eq!(value_token(b""), b"");
        assert!(has_token(b"Upgrade, HTTP2-Settings", b"http2-settings"));
        assert!(has_token(b" h2c ,websocket", b"h2c"));
        assert!(!has_token(b"h2c", b"h2"));
        let b = |ct: &[u8]| parse_content_type(ct).and_then(|c| c.boundary);
        assert_eq!(b(b"multipart/form-data; boundary=XX"), Some(b"XX".to_vec()));
        assert_eq!(
            b(b"multipart/mixed; BOUNDARY=\"a b\"; x=y"),
            Some(b"a b".to_vec())
        );
        // A boundary runs over `;` and `,` (only `"`, whitespace and controls end it).
        assert_eq!(b(b"multipart/x; boundary=ab;cd e"), Some(b"ab;cd".to_vec()));
        assert_eq!(b(b"multipart/x; boundary= ab"), Some(b"ab".to_vec()));
        assert_eq!(b(b"multipart/x; boundary=\"abc"), None);
        assert_eq!(b(b"multipart/x"), None);
        assert_eq!(b(b"text/plain; boundary=x"), None);
        let ct = parse_content_type(b"Message/RFC822").unwrap();
        assert!(ct.message && !ct.multipart);
        assert_eq!(parse_content_type(b"multipart"), None);
        assert_eq!(delimiter(b"--B", b"B"), Delimiter::Boundary);
        assert_eq!(delimiter(b"--Bx", b"B"), Delimiter::Boundary);
        assert_eq!(delimiter(b"--B--HTTP/1.1 200 OK", b"B"), Delimiter::Closing);
        assert_eq!(delimiter(b"--A", b"B"), Delimiter::No);
        assert_eq!(delimiter(b"-B", b"B"), Delimiter::No);
    }
}
