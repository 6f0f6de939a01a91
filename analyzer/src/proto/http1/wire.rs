//! HTTP/1 on the wire: request and status lines, header lines and the values the parser
//! interprets, as pure functions over one line (or one header value) with Zeek's rules. No
//! state lives here: the per-direction state machine ([`super::Http`]) cuts the stream into
//! lines and decides what each one is.
//!
//! Nothing here panics or allocates more than the line it is given: a line that does not
//! parse is `None` (or `Err`), and the caller decides whether that is a violation.

/// Methods recognised when probing and resynchronising (any token is accepted once HTTP is
/// established).
pub(super) const METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"PATCH",
    b"CONNECT",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"MKACTIVITY",
    b"CHECKOUT",
    b"MERGE",
    b"PURGE",
    b"LINK",
    b"UNLINK",
];

/// `b` without leading spaces, tabs, CRs and LFs.
pub(super) fn trim_start(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    &b[n..]
}

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

/// A request line.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RequestLine {
    /// The method token.
    pub(super) method: Vec<u8>,
    /// The target, as sent (empty when there is none).
    pub(super) uri: Vec<u8>,
    /// `HTTP/x.y`; `None` for an HTTP/0.9 request (no version on the line).
    pub(super) version: Option<(u8, u8)>,
}

/// Parses a request line with Zeek's rules; `None` is a violation.
pub(super) fn parse_request_line(line: &[u8]) -> Option<RequestLine> {
    let mlen = line.iter().take_while(|&&c| is_token(c)).count();
    if mlen == 0 || mlen >= line.len() || !is_ws(line[mlen]) {
        return None;
    }
    let method = line[..mlen].to_vec();
    let mut p = mlen;
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    let rest = &line[p..];
    let scan = rest.iter().take_while(|&&c| is_uri_char(c)).count();
    let has_http = |b: &[u8]| b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"HTTP/");
    // `GET HTTP/1.1`: no target at all.
    if scan == rest.len() && has_http(rest) {
        return Some(RequestLine {
            method,
            uri: Vec::new(),
            version: Some(parse_version(&rest[5..])),
        });
    }
    let mut at = scan;
    while at < rest.len() {
        let mut q = at;
        while q < rest.len() && is_ws(rest[q]) {
            q += 1;
        }
        if (q > at || at == scan) && has_http(&rest[q..]) {
            let v = &rest[q + 5..];
            let version = match v {
                [a, b'.', b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => {
                    Some(parse_version(v))
                }
                _ => None,
            };
            return Some(RequestLine {
                method,
                uri: rest[..at].to_vec(),
                version,
            });
        }
        at += 1;
    }
    // HTTP/0.9: no version anywhere on the line.
    let uri = if scan == rest.len() {
        rest
    } else {
        &rest[..rest.len().saturating_sub(1)]
    };
    let uri_trimmed = {
        let n = uri.iter().rev().take_while(|&&c| is_ws(c)).count();
        &uri[..uri.len() - n]
    };
    if method.len() < 3 || uri_trimmed.is_empty() {
        return None;
    }
    Some(RequestLine {
        method,
        uri: uri_trimmed.to_vec(),
        version: None,
    })
}

/// A status line.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct StatusLine {
    /// `HTTP/x.y` (0.0 when not digits).
    pub(super) version: (u8, u8),
    /// The three bytes after the version, as a number; 0 when they are not all digits.
    pub(super) code: u16,
    /// The reason phrase; `None` when the line ends after the code, empty when only
    /// whitespace follows it.
    pub(super) reason: Option<Vec<u8>>,
}

/// Parses a status line with Zeek's rules; `None` when it does not start with `HTTP/` or is
/// too short to hold a code.
pub(super) fn parse_status_line(line: &[u8]) -> Option<StatusLine> {
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
        reason: Some(line[p..].to_vec()),
    })
}

/// Parses a Content-Length value as Zeek does: the first token, decimal, fitting in i64.
pub(super) fn parse_content_length(v: &[u8]) -> Result<u64, ()> {
    let mut b = v;
    loop {
        b = trim_start(b);
        if b.first() == Some(&b'(') {
            match b.iter().position(|&c| c == b')') {
                Some(i) => b = &b[i + 1..],
                None => return Err(()),
            }
        } else {
            break;
        }
    }
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Err(());
    }
    let mut n: u64 = 0;
    for &d in &b[..digits] {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(())?;
    }
    if n > i64::MAX as u64 { Err(()) } else { Ok(n) }
}

/// Chunk size: leading hex digits (i64); anything unusable counts as the last chunk.
pub(super) fn parse_chunk_size(line: &[u8]) -> (u64, bool) {
    let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if digits == 0 {
        return (0, false);
    }
    let mut n: u64 = 0;
    for &d in &line[..digits] {
        let v = (d as char).to_digit(16).unwrap_or(0);
        match n.checked_mul(16).and_then(|n| n.checked_add(u64::from(v))) {
            Some(x) if x <= i64::MAX as u64 => n = x,
            _ => return (0, false),
        }
    }
    (n, true)
}

/// `bytes first-last/len` → last-first+1.
pub(super) fn content_range_len(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let s = s.strip_prefix("bytes")?.trim_start();
    let (range, _) = s.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    b.checked_sub(a)?.checked_add(1)
}

/// The first token of a header value (up to `,`, `;` or whitespace), lowercased.
pub(super) fn first_token_lower(v: &[u8]) -> Vec<u8> {
    let v = trim_start(v);
    let end = v
        .iter()
        .position(|&c| c == b',' || c == b';' || is_ws(c))
        .unwrap_or(v.len());
    v[..end].to_ascii_lowercase()
}

/// Whether a comma-separated header value lists `token`.
pub(super) fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&c| c == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The `boundary` parameter of a multipart Content-Type (quoted or not), if not empty.
pub(super) fn boundary_param(ct: &[u8]) -> Option<Vec<u8>> {
    let lower = ct.to_ascii_lowercase();
    let i = lower.windows(9).position(|w| w == b"boundary=")?;
    let v = &ct[i + 9..];
    let v = if v.first() == Some(&b'"') {
        let end = v[1..]
            .iter()
            .position(|&c| c == b'"')
            .map_or(v.len(), |e| e + 1);
        &v[1..end]
    } else {
        let end = v
            .iter()
            .position(|&c| c == b';' || is_ws(c))
            .unwrap_or(v.len());
        &v[..end]
    };
    (!v.is_empty()).then(|| v.to_vec())
}

/// Splits a complete header line (continuations joined) into name and value, as Zeek does:
/// optional whitespace, the name (printable bytes up to `:`), optional whitespace, `:`, the
/// value without its leading whitespace. `None` when there is no name or no colon.
pub(super) fn split_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut p = 0;
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    let name_start = p;
    while p < line.len() && (33..=126).contains(&line[p]) && line[p] != b':' {
        p += 1;
    }
    let name = &line[name_start..p];
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    if name.is_empty() || p >= line.len() || line[p] != b':' {
        return None;
    }
    Some((name, trim_start_ws(&line[p + 1..])))
}

/// `b` without leading ASCII whitespace.
fn trim_start_ws(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_variants() {
        assert_eq!(
            parse_request_line(b"GET /a b HTTP/1.1"),
            Some(RequestLine {
                method: b"GET".to_vec(),
                uri: b"/a b".to_vec(),
                version: Some((1, 1))
            })
        );
        assert_eq!(parse_request_line(b"GET HTTP/1.1").unwrap().uri, b"");
        assert_eq!(
            parse_request_line(b"GET http://h/p?q HTTP/1.0")
                .unwrap()
                .uri,
            b"http://h/p?q"
        );
        assert_eq!(
            parse_request_line(b"get / http/1.1").unwrap().version,
            Some((1, 1))
        );
        assert_eq!(
            parse_request_line(b"GET /x/HTTP/1.1 HTTP/1.0").unwrap().uri,
            b"/x/HTTP/1.1"
        );
        assert_eq!(
            parse_request_line(b"GET /a<b").unwrap().uri,
            b"/a<",
            "Zeek drops the last byte here"
        );
        assert_eq!(parse_request_line(b"GET /ok").unwrap().version, None);
        assert_eq!(
            parse_request_line(b"T /x"),
            None,
            "0.9 methods need three characters"
        );
        assert_eq!(parse_request_line(b"GET "), None);
        assert_eq!(parse_request_line(b"GET"), None);
        assert_eq!(parse_request_line(b"/ HTTP/1.1"), None);
        assert_eq!(parse_request_line(b""), None);
    }

    #[test]
    fn status_line_variants() {
        let s = parse_status_line(b"HTTP/1.1 200 OK").unwrap();
        assert_eq!(
            (s.version, s.code, s.reason.as_deref()),
            ((1, 1), 200, Some(&b"OK"[..]))
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 204").unwrap().reason, None);
        assert_eq!(
            parse_status_line(b"HTTP/1.1 204 ").unwrap().reason,
            Some(Vec::new())
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK").unwrap().code, 200);
        assert_eq!(parse_status_line(b"HTTP/1.1 abc Weird").unwrap().code, 0);
        assert_eq!(
            parse_status_line(b"HTTP/1.0 404 Not  Found ")
                .unwrap()
                .reason
                .as_deref(),
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
            (&b"12"[..], Ok(12)),
            (b"  12abc", Ok(12)),
            (b"(comment) 7", Ok(7)),
            (b"9223372036854775807", Ok(i64::MAX as u64)),
            (b"9223372036854775808", Err(())),
            (b"18446744073709551616", Err(())),
            (b"(unclosed 5", Err(())),
            (b"abc", Err(())),
            (b"", Err(())),
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
            (&b"1a;ext=1"[..], (26, true)),
            (b"0", (0, true)),
            (b"7fffffffffffffff", (i64::MAX as u64, true)),
            (b"8000000000000000", (0, false)),
            (b"-1", (0, false)),
            (b"", (0, false)),
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
        assert_eq!(first_token_lower(b"  Chunked, gzip"), b"chunked");
        assert_eq!(first_token_lower(b"text/HTML; charset=x"), b"text/html");
        assert_eq!(first_token_lower(b""), b"");
        assert!(has_token(b"Upgrade, HTTP2-Settings", b"http2-settings"));
        assert!(has_token(b" h2c ,websocket", b"h2c"));
        assert!(!has_token(b"h2c", b"h2"));
        let b = |ct: &[u8]| boundary_param(ct);
        assert_eq!(b(b"multipart/form-data; boundary=XX"), Some(b"XX".to_vec()));
        assert_eq!(
            b(b"multipart/mixed; BOUNDARY=\"a b\"; x=y"),
            Some(b"a b".to_vec())
        );
        assert_eq!(b(b"multipart/x; boundary=ab cd"), Some(b"ab".to_vec()));
        assert_eq!(b(b"multipart/x; boundary=\"abc"), Some(b"abc".to_vec()));
        assert_eq!(b(b"multipart/x; boundary="), None);
        assert_eq!(b(b"multipart/x"), None);
    }
}
