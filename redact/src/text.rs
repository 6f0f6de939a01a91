//! Text lines: HTTP/1 request and status lines, header fields (and trailers, and folded
//! continuation lines), and Redis inline commands. Every direction that is not a known binary
//! protocol is read this way, from wherever it starts: a line that begins with a configured
//! header name and a colon has its value overwritten, whatever comes before it, so bodies are
//! never framed (no Content-Length or chunk sizes to trust, nothing to lose sync with), at
//! the price of redacting a body line that looks like a secret header.

use memchr::{memchr, memchr2};

use crate::policy::{Class, MAX_NAME};
use crate::query::{Query, Seen};
use crate::stream::Next;
use crate::{Ctx, Rule};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// At the start of a line.
    Start,
    /// A CR at the start of a line (an empty line if LF follows).
    Cr,
    /// In the line's first token (a header name, a method, a Redis command).
    Token,
    /// Blanks before a secret value.
    Lead,
    /// A secret value, up to the end of the line.
    Value,
    /// A URL (request target: up to a blank; header value: up to the end of the line).
    Url { target: bool },
    /// The version of a status line, after `HTTP/`.
    Version,
    /// The status code of a status line.
    Status,
    /// `HELLO` arguments: looking for `AUTH`.
    Hello,
    /// `HELLO ... AUTH`: the user name, then the rest is secret.
    HelloUser,
    /// Nothing to do until the end of the line.
    Skip,
}

/// The line reader's state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Text {
    st: St,
    tok: [u8; MAX_NAME],
    /// Bytes of the token; above [`MAX_NAME`]: too long to match anything.
    len: usize,
    /// The previous line was a redacted header: a continuation line (obs-fold) is too.
    fold: bool,
    /// A `101` status line was seen: after its header block, the connection is something
    /// else (HTTP/2 after `Upgrade: h2c`, a WebSocket): find out again.
    switch_after: bool,
    status: u16,
    digits: u8,
    q: Query,
}

impl Text {
    /// A reader at the start of a line, or (`false`) somewhere in one.
    pub(crate) fn new(at_line_start: bool) -> Self {
        Text {
            st: if at_line_start { St::Start } else { St::Skip },
            tok: [0; MAX_NAME],
            len: 0,
            fold: false,
            switch_after: false,
            status: 0,
            digits: 0,
            q: Query::default(),
        }
    }

    /// Bytes were lost. A secret value (or URL) cut by the gap goes on as it was; anything
    /// else: what follows is read as the start of a line, so that a header that starts a
    /// segment after a loss is still recognised (a line that merely looks like one is
    /// overwritten too: the safe side).
    pub(crate) fn gap(&mut self) {
        if !matches!(self.st, St::Value | St::Url { .. }) {
            self.st = St::Start;
            self.fold = false;
        }
    }

    fn token(&self) -> &[u8] {
        &self.tok[..self.len.min(MAX_NAME)]
    }

    /// Adds `run` (token characters, at most [`MAX_NAME`] in all) to the token, lower-cased.
    fn push_token(&mut self, run: &[u8]) {
        let end = (self.len + run.len()).min(MAX_NAME);
        for (t, c) in self.tok[self.len..end].iter_mut().zip(run) {
            *t = c.to_ascii_lowercase();
        }
        self.len = end;
    }

    fn empty_line(&mut self) -> bool {
        self.fold = false;
        self.st = St::Start;
        std::mem::take(&mut self.switch_after)
    }

    /// Reads `buf`; returns where the connection turned into something else, if it did.
    pub(crate) fn feed(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> Option<(usize, Next)> {
        let mut i = 0;
        while i < buf.len() {
            let c = buf[i];
            match self.st {
                St::Start => match c {
                    b'\n' => {
                        i += 1;
                        if self.empty_line() {
                            return Some((i, Next::Probe));
                        }
                    }
                    b'\r' => {
                        self.st = St::Cr;
                        i += 1;
                    }
                    b' ' | b'\t' if self.fold => self.st = St::Lead,
                    _ => {
                        self.fold = false;
                        self.len = 0;
                        self.st = St::Token;
                    }
                },
                St::Cr => {
                    if c == b'\n' {
                        i += 1;
                        if self.empty_line() {
                            return Some((i, Next::Probe));
                        }
                    } else {
                        self.st = St::Skip;
                    }
                }
                St::Token => {
                    // The run of token characters here, in one go.
                    let rest = &buf[i..];
                    let run = rest
                        .iter()
                        .position(|&c| !is_tchar(c))
                        .unwrap_or(rest.len());
                    let total = self.len + run;
                    if total > MAX_NAME {
                        // Longer than any name or method this matches: not one of ours.
                        self.st = St::Skip;
                        continue;
                    }
                    let Some(&c) = rest.get(run) else {
                        // The token goes on in the next piece: keep what is here.
                        self.push_token(rest);
                        break;
                    };
                    // The token is copied only when something may match it: a header name
                    // some rule lists (by first byte and length), or a first word short
                    // enough to be `AUTH`, `HELLO`, `PRI` or `HTTP` (a status line).
                    let first = if self.len > 0 { self.tok[0] } else { rest[0] };
                    let wanted = match c {
                        b':' => total > 0 && ctx.policy.may_name_header(first, total),
                        b' ' | b'/' => total <= 5,
                        _ => false,
                    };
                    if wanted {
                        self.push_token(&rest[..run]);
                    } else {
                        self.len = total;
                    }
                    i += run + 1;
                    match c {
                        b':' if wanted => {
                            let class = ctx.policy.header_class(self.token());
                            self.st = match class {
                                Class::Secret(r) => {
                                    ctx.counts.hit(r);
                                    self.fold = true;
                                    St::Lead
                                }
                                Class::Url => {
                                    self.q.reset();
                                    St::Url { target: false }
                                }
                                Class::Plain => St::Skip,
                            };
                        }
                        b' ' => self.st = self.first_word(wanted, ctx),
                        // `HTTP/1.1 101 ...`: a status line.
                        b'/' if wanted && self.token() == b"http" => self.st = St::Version,
                        b'\n' => self.st = St::Start,
                        _ => self.st = St::Skip,
                    }
                    if wanted && self.token() == b"pri" && c == b' ' && ctx_is_h2_preface(&buf[i..])
                    {
                        // `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`: HTTP/2 after an h2c upgrade.
                        return Some((i, Next::H2Client { preface_left: 20 }));
                    }
                }
                St::Version => match c {
                    b' ' => {
                        i += 1;
                        self.status = 0;
                        self.digits = 0;
                        self.st = St::Status;
                    }
                    b'\r' | b'\n' => self.st = St::Skip,
                    _ => i += 1,
                },
                St::Lead => match c {
                    b' ' | b'\t' => i += 1,
                    b'\r' | b'\n' => self.st = St::Skip,
                    _ => self.st = St::Value,
                },
                St::Value => {
                    let end = memchr2(b'\r', b'\n', &buf[i..]).map_or(buf.len(), |e| i + e);
                    ctx.fill(&mut buf[i..end]);
                    i = end;
                    if end < buf.len() {
                        self.st = St::Skip;
                    }
                }
                St::Url { target } => {
                    // The URL's bytes in one loop: before its `?` or `#` none matters but
                    // where the URL ends.
                    let end = |c: u8| c == b'\r' || c == b'\n' || (target && c == b' ');
                    while let Some(&c) = buf.get(i) {
                        if end(c) {
                            self.st = St::Skip;
                            break;
                        }
                        if self.q.in_path() {
                            let rest = &buf[i..];
                            match rest.iter().position(|&c| PATH_STOP[usize::from(c)]) {
                                Some(n) => {
                                    i += n;
                                    if end(buf[i]) {
                                        continue;
                                    }
                                }
                                None => {
                                    i = buf.len();
                                    break;
                                }
                            }
                        }
                        match self.q.byte(buf[i], ctx.policy) {
                            Seen::Secret => ctx.fill(&mut buf[i..=i]),
                            Seen::Starts => ctx.counts.hit(Rule::UrlQuery),
                            Seen::Keep => {}
                        }
                        i += 1;
                    }
                }
                St::Status => {
                    if c.is_ascii_digit() && self.digits < 3 {
                        self.status = self.status * 10 + u16::from(c - b'0');
                        self.digits += 1;
                        i += 1;
                    } else {
                        if self.digits == 3 && self.status == 101 {
                            self.switch_after = true;
                        }
                        self.st = St::Skip;
                    }
                }
                St::Hello => {
                    // Words separated by blanks; after `AUTH` comes the user, then the secret.
                    i += 1;
                    match c {
                        b'\r' | b'\n' => {
                            self.st = if c == b'\n' { St::Start } else { St::Skip };
                        }
                        b' ' => {
                            if self.token().eq_ignore_ascii_case(b"auth") {
                                ctx.counts.hit(Rule::Redis);
                                self.st = St::HelloUser;
                            }
                            self.len = 0;
                        }
                        _ => {
                            if self.len < MAX_NAME {
                                self.tok[self.len] = c;
                            }
                            self.len = (self.len + 1).min(MAX_NAME + 1);
                        }
                    }
                }
                St::HelloUser => match c {
                    b'\r' | b'\n' => self.st = St::Skip,
                    b' ' => {
                        i += 1;
                        self.st = St::Value;
                    }
                    _ => i += 1,
                },
                St::Skip => match memchr(b'\n', &buf[i..]) {
                    Some(e) => {
                        i += e + 1;
                        self.st = St::Start;
                    }
                    None => i = buf.len(),
                },
            }
        }
        None
    }

    /// The first word of a line ended with a blank: a request line or an inline Redis
    /// command. `copied`: the word is in the token (only short words are).
    fn first_word(&mut self, copied: bool, ctx: &mut Ctx<'_>) -> St {
        let redis = ctx.policy.is_on(Rule::Redis);
        let word = if copied { self.token() } else { &[] };
        match word {
            b"auth" if redis => {
                ctx.counts.hit(Rule::Redis);
                St::Value
            }
            b"hello" if redis => {
                self.len = 0;
                St::Hello
            }
            _ if ctx.policy.is_on(Rule::UrlQuery) => {
                self.q.reset();
                St::Url { target: true }
            }
            _ => St::Skip,
        }
    }
}

/// Whether what follows `PRI ` is the rest of the HTTP/2 preface (as far as it is here).
fn ctx_is_h2_preface(rest: &[u8]) -> bool {
    const REST: &[u8] = b"* HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let n = rest.len().min(REST.len());
    n > 0 && rest[..n] == REST[..n]
}

/// Where a URL's path may stop mattering: its query (`?`), fragment (`#`), or its end (a
/// blank ends a request target; CR, LF end a header value).
static PATH_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b'?' as usize] = true;
    t[b'#' as usize] = true;
    t[b' ' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'\n' as usize] = true;
    t
};

/// RFC 9110 token characters.
fn is_tchar(c: u8) -> bool {
    TCHAR[usize::from(c)]
}

/// [`is_tchar`] as a table: the token loop runs over every header name's bytes.
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        c += 1;
    }
    t
};
